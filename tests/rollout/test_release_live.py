"""`ship build`, `ship release` and `ship verify` against the real build engine, registry and
git remotes; every bad input exits non-zero with one line and leaves git untouched."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import git
import httpx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all

pytestmark = [pytest.mark.engine, pytest.mark.registry]
SHIP = [sys.executable, "-m", "pipeline"]


def ship(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def remote_log(bare: Path) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


def test_build_prints_a_pinned_ref_the_registry_confirms(ship_repo, registry):
    work, _ = ship_repo
    # A change to the app of its own, so this build makes an image no other test made yet.
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// build test\n")
    commit_all(work, "a change to the app")
    result = ship("build", "hellok8s", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    head = git.Repo(work).git.rev_list("-1", "HEAD", "--", "apps/hellok8s")  # the full sha
    assert out["image"] == f"{registry}/hellok8s:{head}@{out['digest']}"
    assert out["built"] is True
    manifest = httpx.get(f"http://{registry}/v2/hellok8s/manifests/{out['digest']}",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    assert manifest.status_code == 200
    again = ship("build", "hellok8s", "--output", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["image"] == out["image"] and json.loads(again.stdout)["built"] is False


def test_build_refuses_a_dirty_tree_unless_allowed(ship_repo):
    work, _ = ship_repo
    (work / "apps/hellok8s/config/dev.env").write_text("MESSAGE=changed\n")
    result = ship("build", "hellok8s")
    assert result.exit_code == 1
    assert "GitError: working tree has uncommitted changes (apps/hellok8s/config/dev.env)" in result.stderr
    assert ship("build", "hellok8s", "--allow-dirty").exit_code == 0


@pytest.mark.cluster
def test_release_no_sync_commits_and_pushes_a_pinned_overlay(ship_repo, kubeconfig, namespace):
    work, bare = ship_repo
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace("namespace: hellok8s-dev", f"namespace: {namespace}"))
    git.Repo(work).git.commit("-am", "dev namespace for this test")
    git.Repo(work).git.push("origin", "HEAD:main")  # ship pushes only its own commits
    result = ship("release", "dev", "hellok8s", "--no-sync", "--output", "json")
    assert result.exit_code == 0, result.output
    rel = json.loads(result.stdout)["release"]
    assert remote_log(bare)[0] == f"release(dev): hellok8s@{rel['id']}"
    assert git.Repo(work).head.commit.hexsha == git.Repo(bare).commit("main").hexsha
    rendered = subprocess.run(["kubectl", "kustomize", "environments/dev"], capture_output=True, text=True, check=True).stdout
    assert f"image: {rel['image']}" in rendered and "@sha256:" in rel["image"]
    assert f"name: {rel['config']}" in rendered and "immutable: true" in rendered
    dry = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-k", "environments/dev"],
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "deployment.apps/hellok8s created (server dry run)" in dry.stdout
    # The same commit again is not a second release.
    again = ship("release", "dev", "hellok8s", "--no-sync")
    assert again.exit_code == 0 and "already released to dev; nothing to do" in again.stdout
    assert len(remote_log(bare)) == 4  # the project, initial, the namespace, the release


def test_racing_releases_both_land_with_linear_history(ship_repo, tmp_path):
    work, bare = ship_repo
    clones = [work]
    for name in ("b", "c"):
        clone = git.Repo.clone_from(str(bare), tmp_path / name)
        with clone.config_writer() as cw:
            cw.set_value("user", "name", name)
            cw.set_value("user", "email", f"{name}@example.com")
        clones.append(tmp_path / name)
    assert ship("build", "hellok8s").exit_code == 0  # all clones share the commit, so the image
    # Three clones push at once: dev and uat from two of them, and dev again from the third.
    procs = [subprocess.Popen([*SHIP, "release", env_name, "--no-sync"], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for cwd, env_name in zip(clones, ("dev", "uat", "dev"))]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    subjects = remote_log(bare)
    assert subjects[-2:] == ["initial", "the project"]
    assert sum(s.startswith("release(uat)") for s in subjects) == 1
    # The same release sent to dev twice lands once; the other run finds it already there.
    assert sum(s.startswith("release(dev)") for s in subjects) == 1
    assert git.Repo(bare).git.rev_list("--merges", "main") == ""  # linear


def test_release_onto_a_moved_remote_rebases_and_lands(ship_repo, tmp_path):
    work, bare = ship_repo
    other = git.Repo.clone_from(str(bare), tmp_path / "other")
    (tmp_path / "other" / "NOTES.md").write_text("someone else's change\n")
    other.git.add("NOTES.md")
    other.git.commit("-m", "unrelated change", "--author", "x <x@example.com>")
    other.git.push("origin", "HEAD:main")
    result = ship("release", "dev", "--no-sync")
    assert result.exit_code == 0, result.output
    assert remote_log(bare)[:2][1] == "unrelated change" and remote_log(bare)[0].startswith("release(dev)")


def test_verify_passes_then_fails_when_a_tag_is_pushed_over(ship_repo, docker_client, registry, tmp_path):
    work, _ = ship_repo
    # An app change of its own: this test pushes over its image's tag, which must not be the
    # session's shared image (every other test releases that one).
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// verify test\n")
    commit_all(work, "a change to the app")
    assert ship("release", "dev", "--no-sync").exit_code == 0
    ok = ship("verify", "dev")
    assert ok.exit_code == 0 and ok.stdout.startswith("ok  ")
    tag = ok.stdout.split(":")[2].split("@")[0]
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "f").write_text("different")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    docker_client.images.build(path=str(tmp_path / "ctx"), tag=f"{registry}/hellok8s:{tag}", rm=True)
    for _ in docker_client.images.push(f"{registry}/hellok8s", tag=tag, stream=True, decode=True):
        pass
    moved = ship("verify", "dev")
    assert moved.exit_code == 1
    assert f"MOVED  {registry}/hellok8s:{tag}@" in moved.stdout
    assert f"RegistryError: dev: {registry}/hellok8s:{tag}@" in moved.stderr and "now points at sha256:" in moved.stderr


# --- bad input: one line, non-zero exit, nothing committed or pushed -------------------------

def assert_refused(result, bare: Path, message: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("·")]
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    assert remote_log(bare) == ["initial", "the project"]



@pytest.fixture
def refused(ship_repo):
    work, bare = ship_repo

    def check(args, message, edit=None):
        if edit:
            edit(work)
            commit_all(work, "edit")
            bare_log = remote_log(bare)
            result = ship(*args)
            assert result.exit_code == 1, result.output
            assert message in result.stderr.strip().splitlines()[-1]
            assert remote_log(bare) == bare_log
            return result
        assert_refused(ship(*args), bare, message)

    return check


def test_unknown_app(refused):
    refused(["release", "dev", "nope", "--no-sync"], "ConfigError: unknown app 'nope' (ship.yaml has: hellok8s)")


def test_unknown_environment(refused):
    refused(["release", "qa", "--no-sync"], "ConfigError: unknown environment 'qa' (ship.yaml has: dev, uat, prod)")


def test_malformed_ship_yaml(refused):
    refused(["release", "dev", "--no-sync"], "ConfigError: ship.yaml:9: apps.hellok8s.imagee: unknown key (did you mean 'image'?)",
            edit=lambda w: (w / "ship.yaml").write_text((w / "ship.yaml").read_text().replace("    image: hellok8s", "    imagee: hellok8s")))


def test_missing_dockerfile(refused):
    refused(["release", "dev", "--no-sync"], "BuildError: hellok8s: apps/hellok8s/Dockerfile: Dockerfile not found",
            edit=lambda w: (w / "apps/hellok8s/Dockerfile").unlink())


def test_failing_build_step_shows_the_tail_of_its_log(refused):
    def break_go(w):
        main = w / "apps/hellok8s/main.go"
        main.write_text(main.read_text() + "\nfunc broken() { undefinedThing() }\n")
    result = refused(["build"], "BuildError: hellok8s: build step failed (exit 1): CGO_ENABLED=0 go build", edit=break_go)
    assert "undefined: undefinedThing" in result.stderr


def test_registry_unreachable(refused, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SHIP_REGISTRY", f"127.0.0.1:{port}")
    monkeypatch.setenv("SHIP_RETRY_SECONDS", "2")  # retried, within a total of 2s
    refused(["release", "dev", "--no-sync"], f"RegistryError: registry 127.0.0.1:{port} unreachable (after ")


def test_push_refused_by_a_read_only_registry(refused, monkeypatch, registry, tmp_path):
    port = int(registry.split(":")[1]) + 1  # the port podman trusts for this test
    (tmp_path / "ro.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {tmp_path / 'ro'}}}\n"
        f"  maintenance: {{readonly: {{enabled: true}}}}\nhttp: {{addr: '127.0.0.1:{port}'}}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "ro.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        monkeypatch.setenv("SHIP_REGISTRY", f"127.0.0.1:{port}")
        refused(["release", "dev", "--no-sync"], f"BuildError: push of 127.0.0.1:{port}/hellok8s:")
    finally:
        proc.terminate()
        proc.wait()


def test_digest_mismatch_of_a_given_image(refused, ship_repo, registry):
    built = ship("build", "--output", "json")
    image = json.loads(built.stdout)["image"]
    wrong = image.split("@")[0] + "@sha256:" + "0" * 64
    refused(["release", "dev", "--no-sync", "--image", wrong],
            f"RegistryError: {image.split('@')[0]} now points at {image.split('@')[1]}, not sha256:{'0' * 64}")


def test_overlay_edited_into_something_kustomize_cannot_render(ship_repo):
    work, bare = ship_repo
    assert ship("release", "dev", "--no-sync").exit_code == 0
    kz = work / "environments/dev/kustomization.yaml"
    kz.write_text(kz.read_text().replace("- namespace.yaml", "- namespace.yaml\n- missing-file.yaml"))
    commit_all(work, "hand edit")
    (work / "apps/hellok8s/config/dev.env").write_text("MESSAGE=new\n")
    commit_all(work, "new config")
    before = remote_log(bare)
    result = ship("release", "dev", "--no-sync")
    assert result.exit_code == 1
    assert "RenderError: environments/dev: kustomize cannot render it:" in result.stderr
    assert "missing-file.yaml" in result.stderr
    assert remote_log(bare) == before
    assert git.Repo(work).is_dirty(untracked_files=True) is False  # nothing half-written


def test_a_secret_with_data_in_the_overlay_is_never_committed(ship_repo):
    work, bare = ship_repo
    (work / "environments/dev/db-secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  DB_PASSWORD: hunter2\n")
    commit_all(work, "someone commits a secret")
    before = remote_log(bare)
    result = ship("release", "dev", "--no-sync")
    assert result.exit_code == 1
    assert "ValidationError: environments/dev/db-secret.yaml: a Secret with data must never be committed" in result.stderr
    assert "hunter2" not in result.output
    assert remote_log(bare) == before
