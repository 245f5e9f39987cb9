"""The GitHub Actions workflows: actionlint passes; they are what `ship init` writes; and their
`run:` steps, run in order against the local parts (tests/workflow_runner.py), take a signed
commit to prod, hold prod's job while prod is frozen, take the next one through a canary and
roll prod back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import git
import pytest
import yaml

from pipeline import scaffold
from tests.conftest import ROOT, bare_and_clone, commit_all, copy_project
from tests.workflow_runner import WorkflowRun, runner_env

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship"))
                                              / "bin/actionlint")
    if not Path(found).exists():
        pytest.fail("actionlint is not installed: run `make binaries`", pytrace=False)
    return found


@pytest.mark.binaries
def test_actionlint_passes_on_every_workflow():
    proc = subprocess.run([actionlint(), *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.binaries
def test_actionlint_passes_on_what_ship_init_writes(tmp_path):
    git.Repo.init(tmp_path)
    scaffold.init(tmp_path, "shop", "apps/shop", 8080, "registry.example.com")
    proc = subprocess.run([actionlint()], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_this_repositorys_workflows_are_what_ship_init_writes():
    for name, text in scaffold.workflow_files({"hellok8s": ("DB_PASSWORD",)}).items():
        assert (ROOT / name).read_text() == text, f"{name} drifted from pipeline/templates; regenerate it"


def test_pipeline_shape_queues_per_environment_with_least_permissions():
    wf = yaml.safe_load((ROOT / ".github/workflows/pipeline.yml").read_text())
    assert wf["permissions"] == {"contents": "write", "packages": "write"}
    assert not any(p.startswith("environments") for p in wf[True]["push"]["paths"])  # ship's commits do not re-trigger
    assert list(wf["jobs"]) == ["changes", "build", "dev", "uat", "prod"]
    for env in ("dev", "uat", "prod"):
        job = wf["jobs"][env]
        assert job["environment"] == env and job["concurrency"] == {"group": f"ship-{env}", "cancel-in-progress": False}
    build = wf["jobs"]["build"]
    assert build["needs"] == "changes" and build["if"] == "needs.changes.outputs.count != '0'"
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.matrix) }}"
    assert build["concurrency"]["group"] == "ship-build-${{ matrix.app }}"  # legs of one run never cancel each other
    download = next(s for s in wf["jobs"]["dev"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "image-*" and download["with"]["merge-multiple"] is True
    assert wf["jobs"]["uat"]["if"] == "${{ !cancelled() && !failure() }}"  # also after a run that built nothing
    assert wf["env"]["SHIP_SECRET_HELLOK8S_DB_PASSWORD"] == "${{ secrets.SHIP_SECRET_HELLOK8S_DB_PASSWORD }}"
    assert "ship promote uat prod --canary 10" in wf["jobs"]["prod"]["steps"][-2]["run"]


def test_preview_runs_on_pull_requests_with_read_only_rights():
    wf = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    assert wf["permissions"] == {"contents": "read"} and list(wf[True]) == ["pull_request"]
    assert "ship preview --base \"origin/$BASE_REF\"" in wf["jobs"]["preview"]["steps"][-1]["run"]


def test_preview_steps_write_the_preview_as_the_job_summary(tmp_path):
    """The pull-request workflow's steps, in a clone whose branch changes dev's config: needs no cluster."""
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    copy_project(work)
    shutil.copytree(ROOT / ".github", work / ".github")
    for env in ("dev", "uat", "prod"):
        (work / "environments" / env).mkdir(parents=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    commit_all(work, "initial")
    repo.git.checkout("-qb", "greeting")
    env_file = work / "apps/hellok8s/config/dev.env"
    env_file.write_text(env_file.read_text().replace("Hello from dev", "Hello from a pull request"))
    repo.git.commit("-qam", "a new greeting")
    run = WorkflowRun(work, tmp_path, {"github.base_ref": "main"}, runner_env({}))
    try:
        run.run(work / ".github/workflows/preview.yml")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run.output()[-4000:]}") from None
    summary = run.summary.splitlines()
    assert summary[0] == "### ship preview of this pull request: `origin/main` → working tree"
    assert "| dev | no change | hellok8s: 1 config value |" in summary
    assert "| `MESSAGE` | `Hello from dev` | `Hello from a pull request` |" in summary


@pytest.mark.cluster
@pytest.mark.registry
@pytest.mark.engine
@pytest.mark.binaries
def test_pipeline_and_rollback_steps_run_against_the_local_parts(env_repo, local_parts, tmp_path, cosign_keys):
    work, bare, namespaces = env_repo
    shutil.copytree(ROOT / ".github", work / ".github")
    private, public = cosign_keys("ci")
    shutil.copy(public, work / "cosign.pub")
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace("bake: 30s", "bake: 2s").replace("bake: 10s", "bake: 1s")
                   .replace("bake: 5s", "bake: 1s")
                   .replace("    promotes_from: uat\n",
                            "    promotes_from: uat\n    policy: {require_signature: true, public_key: cosign.pub}\n"))
    # An app change of its own: the pipeline builds (and so signs) it; a found image is never signed.
    (work / "apps/hellok8s/README.md").write_text((work / "apps/hellok8s/README.md").read_text() + "\nworkflow test\n")
    commit_all(work, "workflows; prod takes signed images only; short bakes for the test")
    run = WorkflowRun(work, tmp_path, {
        "secrets.KUBECONFIG": Path(local_parts["KUBECONFIG"]).read_text(),
        "secrets.SHIP_SECRET_HELLOK8S_DB_PASSWORD": "from-a-github-secret",
        "secrets.REGISTRY_USERNAME": "", "secrets.REGISTRY_PASSWORD": "", "secrets.GITHUB_TOKEN": "",
        "secrets.SHIP_COSIGN_KEY": private.read_text(), "secrets.COSIGN_PASSWORD": "",
        "vars.SHIP_REGISTRY": local_parts["SHIP_REGISTRY"],
        "github.actor": "octocat",
    }, runner_env(local_parts))
    pipeline = work / ".github/workflows/pipeline.yml"
    try:
        outputs = run.run(pipeline)
        assert outputs["changes"]["matrix"] == '{"app": ["hellok8s"]}'
        summary = run.summary
        assert f"Built and pinned `{local_parts['SHIP_REGISTRY']}/hellok8s:" in summary
        assert "```mermaid\nflowchart LR" in summary
        assert "  dev --> uat\n  uat --> prod" in summary
        # a second commit while prod is frozen: dev and uat take it, prod's job is held, not failed
        env_file = work / "apps/hellok8s/config/dev.env"
        env_file.write_text(env_file.read_text() + "GREETING=second\n")
        commit_all(work, "second change")
        subprocess.run(["ship", "freeze", "prod", "--reason", "launch week"], cwd=work, env=run.env, check=True,
                       capture_output=True)
        into_prod = len(git.Repo(bare).git.log("--format=%s", "--grep=^promote(prod)\\|^canary(prod)", "main").splitlines())
        assert into_prod >= 1  # run 1 promoted to prod
        run.run(pipeline)
        assert "### prod: held by freeze" in run.summary and "prod is frozen by freeze commit" in run.summary
        log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
        assert any(s.startswith("promote(uat): hellok8s") for s in log[:3]), log[:3]
        assert len(git.Repo(bare).git.log("--format=%s", "--grep=^promote(prod)\\|^canary(prod)", "main").splitlines()) \
            == into_prod
        # unfrozen: prod now has a stable release, so the canary runs (its image verified first)
        subprocess.run(["ship", "unfreeze", "prod"], cwd=work, env=run.env, check=True, capture_output=True)
        run.run(pipeline)
        log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
        assert any(s.startswith("promote(prod): hellok8s") and "after canary 10% passed" in s for s in log), log
        assert "Ship-Signature: cosign, key cosign.pub" in git.Repo(bare).git.log("-1", "--format=%B",
                                                                                 "--grep=^promote(prod)", "main")
        run.run(work / ".github/workflows/rollback.yml", {"environment": "prod", "app": "hellok8s", "reason": "checkout errors"})
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- steps ---\n{run.output()[-6000:]}") from None
    log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
    assert log[0].startswith("rollback(prod): ") and "checkout errors (by octocat)" in log[0]
    assert "### rollback prod" in run.summary
    secret = subprocess.run(["kubectl", "-n", namespaces["prod"], "get", "secret", "hellok8s-secrets", "-o",
                             "jsonpath={.data.DB_PASSWORD}"], capture_output=True, text=True, check=True).stdout
    import base64

    assert base64.b64decode(secret).decode() == "from-a-github-secret"


FAKE_SHIP = """#!/bin/bash
# ship for the pipeline's plumbing: `build --changed --list` is the real one; a build prints a
# pinned image; everything else is written to the log.
if [ "$1" = build ] && [ "$2" = --changed ]; then exec {real} "$@"; fi
if [ "$1" = build ]; then echo "registry.example.com/$2:abc1234@sha256:$(printf '%064d' 0)"; exit 0; fi
echo "ship $*" >> {log}
"""


def test_pipeline_builds_the_changed_apps_as_a_matrix_and_releases_them_to_dev_in_one_command(tmp_path):
    """The pipeline's plumbing with a stand-in ship (no cluster): the changes job's matrix, one
    build leg per app, their images passed on as artifacts, one `ship release dev` for them all,
    and no build or release when nothing changed."""
    import sys

    bare, work, repo = bare_and_clone(tmp_path, "repo")
    copy_project(work)
    shutil.copytree(ROOT / ".github", work / ".github")
    scaffold.init(work, "shop", "apps/shop", 8080, "unused")
    commit_all(work, "two apps")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    bin_dir, log = tmp_path / "bin", tmp_path / "ship.log"
    bin_dir.mkdir()
    (bin_dir / "ship").write_text(FAKE_SHIP.format(real=Path(sys.executable).parent / "ship", log=log))
    (bin_dir / "ship").chmod(0o755)
    env = runner_env({})
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    context = {"secrets.KUBECONFIG": "", "secrets.SHIP_SECRET_HELLOK8S_DB_PASSWORD": "", "vars.SHIP_REGISTRY": "",
               "secrets.REGISTRY_USERNAME": "", "secrets.REGISTRY_PASSWORD": "", "secrets.GITHUB_TOKEN": "", "secrets.SHIP_COSIGN_KEY": "",
               "secrets.COSIGN_PASSWORD": "", "github.actor": "octocat"}
    run = WorkflowRun(work, tmp_path, context, env)
    try:
        outputs = run.run(work / ".github/workflows/pipeline.yml")
        assert json.loads(outputs["changes"]["matrix"]) == {"app": ["hellok8s", "shop"]} and outputs["changes"]["count"] == "2"
        image = "registry.example.com/{}:abc1234@sha256:" + "0" * 64
        assert log.read_text().splitlines() == [
            f"ship release dev hellok8s shop --image hellok8s={image.format('hellok8s')} "
            f"--image shop={image.format('shop')}",
            "ship summary --title release dev",
            "ship promote dev uat", "ship summary --title promote uat",
            "ship promote uat prod --canary 10", "ship summary --title promote prod"]
        assert [(s.job, s.name) for s in run.steps].count(("build", "ship build")) == 2  # a leg per app
        # both released as they are now: nothing to build or release; uat and prod still run
        for app in ("hellok8s", "shop"):
            (work / "environments/dev" / app).mkdir(parents=True, exist_ok=True)
            sha = repo.git.rev_list("-1", "HEAD", "--", f"apps/{app}")
            (work / "environments/dev" / app / "release.yaml").write_text(f"id: r1\napp: {app}\ncommit: {sha}\n")
        commit_all(work, "released")
        log.unlink()
        outputs = run.run(work / ".github/workflows/pipeline.yml")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run.output()[-4000:]}") from None
    assert outputs["changes"] == {"matrix": '{"app": []}', "count": "0"}
    assert outputs["build"] == {"result": "skipped"} and outputs["dev"] == {"result": "skipped"}
    assert log.read_text().splitlines()[0] == "ship promote dev uat"
