"""The GitHub Actions workflows, run as they are by nektos/act (tests/act.py): actionlint passes;
they are what `ship init` writes; act reproduces GitHub's transitive skip; the pipeline builds the
changed apps as a matrix, signs them in a job of its own and releases them to dev in one command,
and with nothing changed still promotes uat and prod; a first run without its variables and
secrets says which ones and how to set them; against the local parts, a signed commit goes to
prod, prod's job is held while prod is frozen, the next one goes through a canary and prod rolls
back. The rules act cannot see (permissions, pins) are in test_workflow_rules.py."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest

from pipeline import scaffold
from tests.act import Act, export_source, runner_env
from tests.conftest import ROOT, bare_and_clone, commit_all, copy_project
from tests.deployer import deployer_kubeconfig

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship"))
                                              / "bin/actionlint")
    if not Path(found).exists():
        pytest.fail("actionlint is not installed: run `make binaries`", pytrace=False)
    return found


@pytest.fixture(scope="session")
def ship_source(tmp_path_factory) -> Path:
    """ship's repository as `uses: OWNER/ship@vX` gets it."""
    return export_source(tmp_path_factory.mktemp("ship-source"))


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
    for name, text in scaffold.workflow_files({"hellok8s": ("DB_PASSWORD",)}, scaffold.IGNORE).items():
        assert (ROOT / name).read_text() == text, f"{name} drifted from pipeline/templates; regenerate it"


THREE_JOBS = """name: skip
on: push
jobs:
  a: {runs-on: ubuntu-24.04, if: false, steps: [{run: echo a}]}
  b: {needs: a, runs-on: ubuntu-24.04, if: "${{ !cancelled() && !failure() }}", steps: [{run: echo b}]}
  c: {needs: b, runs-on: ubuntu-24.04, __C_IF__steps: [{run: echo c}]}
"""


@pytest.mark.binaries
def test_act_skips_a_job_below_a_skipped_one_as_github_does(tmp_path):
    """actions/runner#2205: a → b → c, a skipped, b runs on `!cancelled()`; c without it is skipped
    although b succeeded. So running the workflows under act catches the defect."""
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    (work / ".github/workflows").mkdir(parents=True)
    found = {}
    for case, c_if in (("without", ""), ("with", "if: \"${{ !cancelled() && needs.b.result == 'success' }}\", ")):
        (work / ".github/workflows/skip.yml").write_text(THREE_JOBS.replace("__C_IF__", c_if))
        commit_all(work, case)
        found[case] = Act(work, tmp_path, ship=ROOT).run("skip.yml").results()
    assert found == {"without": {"b": ["success"]}, "with": {"b": ["success"], "c": ["success"]}}


def preview_repo(tmp_path: Path) -> Path:
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
    return work


@pytest.mark.binaries
def test_preview_writes_the_preview_as_the_job_summary(tmp_path, ship_source):
    """The pull-request workflow, ship installed by its action: needs no cluster and no secret."""
    work = preview_repo(tmp_path)
    run = Act(work, tmp_path, ship_source).run("preview.yml", "pull_request",
                                               {"pull_request": {"base": {"ref": "main"}, "head": {"ref": "greeting"}}})
    assert run.results() == {"preview": ["success"]}, run.output()[-6000:]
    summary = run.summary("preview").splitlines()
    assert summary[0] == "### ship preview of this pull request: `origin/main` → working tree"
    assert "| dev | no change | hellok8s: 1 config value |" in summary
    assert "| `MESSAGE` | `Hello from dev` | `Hello from a pull request` |" in summary


FAKE_SHIP = """#!/bin/bash
# ship for the pipeline's plumbing: `build --changed --list` is the real one; a build prints a
# pinned image; everything else is written to the log, with what the job could reach.
if [ "$1" = build ] && [ "$2" = --changed ]; then exec {real} "$@"; fi
reach="kubeconfig=$([ -s "${{KUBECONFIG:-}}" ] && echo yes || echo no) secret=${{SHIP_SECRET_HELLOK8S_DB_PASSWORD:-none}}"
echo "ship $* ($reach)" >> {log}
if [ "$1" = build ]; then echo "registry.example.com/$2:abc1234@sha256:$(printf '%064d' 0)"; fi
exit 0
"""

FAKE_ACTION = """name: ship (stand-in)
description: The stand-in ship on PATH, with the kubeconfig written as the real action writes it.
inputs:
  kubeconfig: {required: false, default: ""}
  environment: {required: false, default: ""}
  commits: {required: false, default: "false"}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        KUBECONFIG_DATA: ${{ inputs.kubeconfig }}
      run: |
        echo "$GITHUB_ACTION_PATH/bin" >> "$GITHUB_PATH"
        if [ -n "$KUBECONFIG_DATA" ]; then
          printf '%s\\n' "$KUBECONFIG_DATA" > "$RUNNER_TEMP/kubeconfig"; echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"
        fi
"""


def fake_ship_action(tmp_path: Path) -> tuple[Path, Path]:
    folder, log = tmp_path / "ship-standin", tmp_path / "ship.log"
    (folder / "bin").mkdir(parents=True)
    (folder / "action.yml").write_text(FAKE_ACTION)
    (folder / "bin/ship").write_text(FAKE_SHIP.format(real=Path(sys.executable).parent / "ship", log=log))
    (folder / "bin/ship").chmod(0o755)
    return folder, log


PLUMBING_SECRETS = {"KUBECONFIG": "apiVersion: v1\nkind: Config\n", "SHIP_SECRET_HELLOK8S_DB_PASSWORD": "pw",
                    "GITHUB_TOKEN": "a-token", "SHIP_COSIGN_KEY": "", "REGISTRY_USERNAME": "bot", "REGISTRY_PASSWORD": "a-token"}


@pytest.mark.binaries
def test_pipeline_builds_the_changed_apps_as_a_matrix_and_still_promotes_when_nothing_changed(tmp_path):
    """The pipeline with a stand-in ship (no cluster): the changes job's matrix, one build leg per
    app, their images passed on as artifacts, one `ship release dev` for them all; no kubeconfig or
    app secret before dev. Then, nothing changed: no build, no release, and uat and prod still run
    (GitHub's transitive skip would have skipped prod)."""
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    copy_project(work)
    shutil.copytree(ROOT / ".github", work / ".github")
    scaffold.init(work, "shop", "apps/shop", 8080, "unused")
    commit_all(work, "two apps")
    folder, log = fake_ship_action(tmp_path)
    act = Act(work, tmp_path, folder, secrets=PLUMBING_SECRETS, variables={"SHIP_REGISTRY": "registry.example.com"})
    run = act.run("pipeline.yml")
    outputs = {e["msg"].split(":: ", 1)[1].strip() for e in run.events if "::set-output::" in e.get("msg", "")}
    assert run.results() == {"changes": ["success"], "build": ["success", "success"], "sign": ["success"],
                             "dev": ["success"], "uat": ["success"], "prod": ["success"]}, run.output()[-6000:]
    assert 'matrix={"app": ["hellok8s", "shop"]}' in outputs and "count=2" in outputs
    image = "registry.example.com/{}:abc1234@sha256:" + "0" * 64
    lines = log.read_text().splitlines()
    assert sorted(lines[:2]) == ["ship build hellok8s (kubeconfig=no secret=none)", "ship build shop (kubeconfig=no secret=none)"]
    assert lines[2:] == [
        f"ship release dev hellok8s shop --image hellok8s={image.format('hellok8s')} "
        f"--image shop={image.format('shop')} (kubeconfig=yes secret=pw)",
        "ship summary --title release dev (kubeconfig=yes secret=pw)",
        "ship promote dev uat (kubeconfig=yes secret=pw)", "ship summary --title promote uat (kubeconfig=yes secret=pw)",
        "ship promote uat prod --canary 10 (kubeconfig=yes secret=pw)", "ship summary --title promote prod (kubeconfig=yes secret=pw)"]
    assert "no SHIP_COSIGN_KEY secret" in run.output("sign")
    # both released as they are now: nothing to build or release; uat and prod still run
    repo.git.pull("-q", "origin", "main")
    for app in ("hellok8s", "shop"):
        (work / "environments/dev" / app).mkdir(parents=True, exist_ok=True)
        sha = repo.git.rev_list("-1", "HEAD", "--", f"apps/{app}")
        (work / "environments/dev" / app / "release.yaml").write_text(f"id: r1\napp: {app}\ncommit: {sha}\n")
    commit_all(work, "released")
    log.unlink()
    run = act.run("pipeline.yml")
    assert run.results() == {"changes": ["success"], "uat": ["success"], "prod": ["success"]}, run.output()[-6000:]
    assert "count=0" in run.output("changes")
    assert [line.split(" (")[0] for line in log.read_text().splitlines()] == [
        "ship promote dev uat", "ship summary --title promote uat", "ship promote uat prod --canary 10",
        "ship summary --title promote prod"]


def errors(run) -> list[str]:
    """The run's distinct error lines (act reports a composite action's step exit twice: inside the
    action, and for the step using it): the one ::error, the failed step's exit, nothing else."""
    return sorted({e["msg"].strip().removeprefix("❗  ").strip() for e in run.events if e.get("level") == "error"})


@pytest.mark.binaries
def test_a_first_run_without_its_variable_and_secrets_says_which_and_how_to_set_them(tmp_path, ship_source):
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    copy_project(work)
    shutil.copytree(ROOT / ".github", work / ".github")
    commit_all(work, "initial")
    act = Act(work, tmp_path, ship_source)
    run = act.run("pipeline.yml")
    assert run.results() == {"changes": ["failure"]}, run.output()[-6000:]
    assert run.summary() == ("### Set up before the first release\n\n"
                             "- variable `SHIP_REGISTRY` is not set: `gh variable set SHIP_REGISTRY --body ghcr.io/OWNER` "
                             "(where images are pushed)\n")
    assert errors(run) == ["::error title=Not set up::the repository's variable SHIP_REGISTRY not set (see the job summary)",
                           "exit status 1"]
    # a registry other than ghcr.io needs its login as repository secrets
    act.variables = {"SHIP_REGISTRY": "registry.example.com/acme"}
    run = act.run("pipeline.yml")
    assert run.results() == {"changes": ["failure"]}, run.output()[-6000:]
    assert run.summary() == ("### Set up before the first release\n\n"
                             "- secrets `REGISTRY_USERNAME` and `REGISTRY_PASSWORD` (the login to registry.example.com/acme) "
                             "are not set:\n  `gh secret set REGISTRY_USERNAME` and `gh secret set REGISTRY_PASSWORD` "
                             "(docs/registries.md)\n")
    assert errors(run) == ["::error title=Not set up::the repository's secrets REGISTRY_USERNAME and REGISTRY_PASSWORD "
                           "not set (see the job summary)", "exit status 1"]
    # a deploying job: its environment's KUBECONFIG and the app secret ship.yaml names, in one summary
    run = act.run("rollback.yml", "workflow_dispatch", {"inputs": {"environment": "prod", "app": "", "release": "",
                                                                   "reason": "test"}})
    assert run.results() == {"rollback": ["failure"]}, run.output()[-6000:]
    assert run.summary() == (
        "### Set up before the first release\n\n"
        "- secret `KUBECONFIG` of environment `prod` is not set:\n"
        "  `ship kubeconfig prod --service-account ship-deployer | gh secret set KUBECONFIG --env prod`\n"
        "  (as a cluster admin, once `ship rbac prod | kubectl apply -f -` has run; see docs/ci.md)\n"
        "- secret `SHIP_SECRET_HELLOK8S_DB_PASSWORD` of environment `prod` is not set:\n"
        "  `gh secret set SHIP_SECRET_HELLOK8S_DB_PASSWORD --env prod` (an app secret ship.yaml names; the value on stdin)\n")
    assert errors(run) == ["::error title=Not set up::secrets of the GitHub environment prod not set: KUBECONFIG, "
                           "SHIP_SECRET_HELLOK8S_DB_PASSWORD (see the job summary)", "exit status 1"]
    assert ("secrets of the GitHub environment prod not set: KUBECONFIG, SHIP_SECRET_HELLOK8S_DB_PASSWORD "
            "(see the job summary)") in run.output("rollback")


@pytest.mark.cluster
@pytest.mark.registry
@pytest.mark.engine
@pytest.mark.binaries
def test_pipeline_and_rollback_run_against_the_local_parts(env_repo, local_parts, tmp_path, cosign_keys, ship_source):
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
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// workflow test\n")
    commit_all(work, "workflows; prod takes signed images only; short bakes for the test")
    minted = deployer_kubeconfig([sys.executable, "-m", "pipeline"], work, local_parts["KUBECONFIG"], namespaces)
    act = Act(work, tmp_path, ship_source, secrets={
        "KUBECONFIG": minted,  # the deployer's, never the admin's
        "SHIP_SECRET_HELLOK8S_DB_PASSWORD": "from-a-github-secret", "GITHUB_TOKEN": "a-token",
        "SHIP_COSIGN_KEY": private.read_text(), "COSIGN_PASSWORD": "",
    }, variables={"SHIP_REGISTRY": local_parts["SHIP_REGISTRY"]},
        env=runner_env(DOCKER_HOST=local_parts.get("DOCKER_HOST", "")))
    ship_env = {**os.environ, "KUBECONFIG": local_parts["KUBECONFIG"]}
    run = act.run("pipeline.yml")
    assert run.results() == {"changes": ["success"], "build": ["success"], "sign": ["success"],
                             "dev": ["success"], "uat": ["success"], "prod": ["success"]}, run.output()[-8000:]
    assert f"Built and pinned `{local_parts['SHIP_REGISTRY']}/hellok8s:" in run.summary("build")
    assert "```mermaid\nflowchart LR" in run.summary("dev")
    into_prod = "--grep=^promote(prod)\\|^canary(prod)"
    assert len(git.Repo(bare).git.log("--format=%s", into_prod, "main").splitlines()) >= 1
    # a second commit while prod is frozen: dev and uat take it, prod's job is held, not failed
    repo = git.Repo(work)
    repo.git.pull("-q", "origin", "main")
    env_file = work / "apps/hellok8s/config/dev.env"
    env_file.write_text(env_file.read_text() + "GREETING=second\n")
    commit_all(work, "second change")
    subprocess.run([sys.executable, "-m", "pipeline", "freeze", "prod", "--reason", "launch week"], cwd=work,
                   env=ship_env, check=True, capture_output=True)
    before = len(git.Repo(bare).git.log("--format=%s", into_prod, "main").splitlines())
    run = act.run("pipeline.yml")
    assert run.results().get("prod") == ["success"], run.output()[-8000:]
    assert "### prod: held by freeze" in run.summary("prod") and "prod is frozen by freeze commit" in run.summary("prod")
    log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
    assert any(s.startswith("promote(uat): hellok8s") for s in log[:3]), log[:3]
    assert len(git.Repo(bare).git.log("--format=%s", into_prod, "main").splitlines()) == before
    # unfrozen: prod now has a stable release, so the canary runs (its image verified first); nothing
    # changed, so nothing is built: the run promotes what uat has (GitHub's transitive skip would not)
    repo.git.pull("-q", "origin", "main")
    subprocess.run([sys.executable, "-m", "pipeline", "unfreeze", "prod"], cwd=work, env=ship_env, check=True,
                   capture_output=True)
    repo.git.push("-q", "origin", "HEAD:main")
    run = act.run("pipeline.yml", "workflow_dispatch")
    assert run.results() == {"changes": ["success"], "uat": ["success"], "prod": ["success"]}, run.output()[-8000:]
    log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
    assert any(s.startswith("promote(prod): hellok8s") and "after canary 10% passed" in s for s in log), log
    assert "Ship-Signature: cosign, key cosign.pub" in git.Repo(bare).git.log("-1", "--format=%B",
                                                                             "--grep=^promote(prod)", "main")
    repo.git.pull("-q", "origin", "main")
    run = act.run("rollback.yml", "workflow_dispatch",
                  {"inputs": {"environment": "prod", "app": "hellok8s", "release": "", "reason": "checkout errors"}})
    assert run.results() == {"rollback": ["success"]}, run.output()[-8000:]
    log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
    assert log[0].startswith("rollback(prod): ") and "checkout errors (by octocat)" in log[0]
    assert "### rollback prod" in run.summary("rollback")
    secret = subprocess.run(["kubectl", "-n", namespaces["prod"], "get", "secret", "hellok8s-secrets", "-o",
                             "jsonpath={.data.DB_PASSWORD}"], capture_output=True, text=True, check=True,
                            env=ship_env).stdout
    assert base64.b64decode(secret).decode() == "from-a-github-secret"
