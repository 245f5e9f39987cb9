"""The review's live reproductions, against the real build engine, registry, git remote and
cluster: each was accepted on main and is refused now (issue 27)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import git
import httpx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def remote_head(bare: Path) -> str:
    return git.Repo(bare).commit("main").hexsha


def test_build_refuses_a_tag_someone_pushed_first_and_signs_nothing(ship_repo, registry, docker_client, tmp_path,
                                                                     monkeypatch):
    """Someone who can push to the registry pushes app:<tag> before the build leg runs."""
    work, _ = ship_repo
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// raced\n")
    commit_all(work, "a change to the app")
    sha = git.Repo(work).git.rev_list("-1", "HEAD", "--", "apps/hellok8s")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil/Dockerfile").write_text("FROM scratch\nLABEL org.opencontainers.image.revision=" + "0" * 40 + "\n"
                                              "COPY Dockerfile /evil\n")
    docker_client.images.build(path=str(tmp_path / "evil"), tag=f"{registry}/hellok8s:{sha}", rm=True)
    for line in docker_client.images.push(f"{registry}/hellok8s", tag=sha, stream=True, decode=True):
        assert "error" not in line, line
    monkeypatch.setenv("SHIP_COSIGN_KEY", str(tmp_path / "cosign.key"))  # a key is at hand: nothing may be signed
    (tmp_path / "cosign.key").write_text("not used\n")
    result = ship("build", "hellok8s")
    assert result.exit_code == 1
    assert f"BuildError: {registry}/hellok8s:{sha} is already in the registry but its org.opencontainers.image." \
           f"revision is {'0' * 40}, not {sha}" in result.stderr
    from pipeline.image.registry import Registry

    evil = Registry(registry).manifest_digest("hellok8s", sha)
    tags = httpx.get(f"http://{registry}/v2/hellok8s/tags/list").json()["tags"]
    assert evil and f"sha256-{evil.split(':')[1]}.sig" not in tags  # cosign's signature tag: none


def test_build_tags_the_full_sha_and_steps_see_no_secret(ship_repo, registry, monkeypatch):
    work, _ = ship_repo
    cfg = work / "ship.yaml"
    step = '      - test -z "$SHIP_SECRET_HELLOK8S_DB_PASSWORD$COSIGN_PASSWORD$SHIP_COSIGN_KEY"\n'
    cfg.write_text(cfg.read_text().replace("      - CGO_ENABLED=0", step + "      - CGO_ENABLED=0", 1))
    assert step in cfg.read_text()
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// secrets\n")
    commit_all(work, "a build step that fails when it sees a secret")
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    result = ship("build", "hellok8s", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["tag"] == git.Repo(work).git.rev_list("-1", "HEAD", "--", "apps/hellok8s") and out["built"] is True


@pytest.mark.cluster
def test_a_config_symlinked_to_the_runners_environment_is_refused_and_nothing_leaves(env_repo, hellok8s_image, monkeypatch):
    work, bare, namespaces = env_repo
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "leak-canary-5150")
    config = work / "apps/hellok8s/config/dev.env"
    config.unlink()
    config.symlink_to("/proc/self/environ")
    commit_all(work, "config from the runner's environment")
    before = remote_head(bare)
    result = ship("release", "dev", "--image", hellok8s_image)
    assert result.exit_code == 1 and "ConfigError: apps/hellok8s/config/dev.env: a symlink (to /proc/self/environ)" \
        in result.stderr
    assert remote_head(bare) == before
    assert "leak-canary-5150" not in git.Repo(bare).git.log("-p", "main")
    got = subprocess.run(["kubectl", "get", "namespace", namespaces["dev"]], capture_output=True, text=True)
    assert got.returncode != 0  # nothing reached the cluster


@pytest.mark.cluster
def test_a_secret_generator_and_an_unpinned_init_container_never_reach_the_cluster(env_repo, hellok8s_image, monkeypatch):
    work, bare, namespaces = env_repo
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    assert ship("release", "dev", "--image", hellok8s_image, "--no-sync").exit_code == 0
    kz = work / "environments/dev/kustomization.yaml"
    kz.write_text(kz.read_text() + "secretGenerator:\n- name: sneaky\n  literals: [password=hunter2]\n")
    commit_all(work, "a generator")
    synced = ship("sync", "dev")
    assert synced.exit_code == 1 and "renders with data" in synced.stderr
    kz.write_text(kz.read_text().split("secretGenerator:")[0])
    base = work / "apps/hellok8s/base/deployment.yaml"
    base.write_text(base.read_text().replace("      containers:\n", "      initContainers:\n        - name: setup\n"
                                             "          image: busybox:latest\n      containers:\n", 1))
    commit_all(work, "an init container")
    synced = ship("sync", "dev")
    assert synced.exit_code == 1 and "initContainers/0/image: busybox:latest: not pinned by digest" in synced.stderr
    listed = subprocess.run(["kubectl", "get", "secret,deployment", "-n", namespaces["dev"], "-o", "name"],
                            capture_output=True, text=True, env=os.environ)
    assert "sneaky" not in listed.stdout and "deployment" not in listed.stdout
