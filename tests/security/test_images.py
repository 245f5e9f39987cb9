"""Reproductions: every image that will run is pinned by digest and, where the environment asks,
signed, however it got into the rendered objects: an init container in a base, a Job, a CronJob,
another app's overlay (issue 27, item 4). Real git and kustomize; the in-memory cluster and cosign
of tests/fakes.py."""

from __future__ import annotations

import pytest

from pipeline.commands import deploy, inspect
from pipeline.errors import SignatureError, ValidationError
from pipeline.kube.podspec import container_images
from pipeline.policy.images import digest_ref
from tests.commands.test_governance import SIGNED, with_policy
from tests.fakes import DIGEST_GOOD, GOOD, SHIP_YAML, fake_context, fake_project

BUSYBOX = "busybox:latest"
PINNED_UNSIGNED = "127.0.0.1:15000/tools@sha256:" + "d" * 64


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    monkeypatch.delenv("SHIP_ACTOR", raising=False)

    def make(policy: str | None = None):
        fake_project(tmp_path)
        (tmp_path / "ship.yaml").write_text(with_policy(SHIP_YAML, "dev", policy) if policy else SHIP_YAML)
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys/a.pub").write_text("key-a\n")
        commit(tmp_path, "policy")
        ctx, cluster, _ = fake_context(tmp_path, [])
        ctx.signer().signatures[DIGEST_GOOD] = {"key-a"}
        return ctx, cluster
    return make


def commit(root, message: str) -> None:
    import git

    repo = git.Repo(root)
    repo.git.add("--all")
    repo.git.commit("-qm", message)


def with_init_container(root, image: str) -> None:
    path = root / "apps/hellok8s/base/deployment.yaml"
    text = path.read_text()
    path.write_text(text.replace("      containers:\n", f"      initContainers:\n        - name: setup\n          image: {image}\n"
                                 "      containers:\n", 1))
    commit(root, f"an init container running {image}")


def test_an_unpinned_init_container_in_a_base_is_refused_before_anything_is_applied(project):
    ctx, cluster = project()
    with_init_container(ctx.config.root, BUSYBOX)
    with pytest.raises(ValidationError, match=r"dev: Deployment/hk-dev/hellok8s /spec/template/spec/initContainers/0/"
                                              r"image: busybox:latest: not pinned by digest"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert cluster.deployment("hk-dev", "hellok8s") is None


def test_verify_lists_an_init_container_image(project):
    ctx, _ = project()
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    with_init_container(ctx.config.root, BUSYBOX)
    lines = inspect.verify(ctx, "dev").text().splitlines()
    assert any(line.startswith("MOVED  busybox:latest  (Deployment/hk-dev/hellok8s /spec/template/spec/initContainers/0/"
                               "image: not pinned by digest)") for line in lines), lines


def test_a_pinned_but_unsigned_init_container_is_refused_where_signatures_are_required(project):
    ctx, cluster = project(SIGNED)
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    with_init_container(ctx.config.root, PINNED_UNSIGNED)
    with pytest.raises(SignatureError, match=f"initContainers/0/image: {PINNED_UNSIGNED}: not signed with keys/a.pub, "
                                             r"which dev requires \(no signatures found\); nothing applied"):
        deploy.sync(ctx, "dev")
    init = cluster.deployment("hk-dev", "hellok8s")["spec"]["template"]["spec"].get("initContainers")
    assert not init  # the signed release runs as it was


def test_a_release_of_one_app_checks_every_app_in_the_environment(project):
    """Release and promote verified only the images they wrote, then synced the whole environment."""
    ctx, _ = project(SIGNED)
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    kz = ctx.config.root / "environments/dev/hellok8s/kustomization.yaml"
    kz.write_text(kz.read_text().replace(DIGEST_GOOD, "sha256:" + "e" * 64))  # someone else's commit
    commit(ctx.config.root, "another digest, by hand")
    with pytest.raises(SignatureError, match="not signed with keys/a.pub"):
        deploy.sync(ctx, "dev")


def test_images_are_collected_from_every_pod_template():
    pod = {"initContainers": [{"image": "i"}], "containers": [{"image": "c"}], "ephemeralContainers": [{"image": "e"}]}
    assert container_images({"kind": "Pod", "spec": pod}) == [("/spec/initContainers/0/image", "i"),
                                                              ("/spec/containers/0/image", "c"),
                                                              ("/spec/ephemeralContainers/0/image", "e")]
    job = {"kind": "Job", "spec": {"template": {"spec": {"containers": [{"image": "j"}]}}}}
    assert container_images(job) == [("/spec/template/spec/containers/0/image", "j")]
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"image": "x"}]}}}}}}
    assert container_images(cron) == [("/spec/jobTemplate/spec/template/spec/initContainers/0/image", "x")]
    assert container_images({"kind": "ConfigMap", "data": {}}) == []


@pytest.mark.parametrize("image, pinned", [
    (GOOD, True), (PINNED_UNSIGNED, True), ("busybox@sha256:" + "a" * 64, True), (BUSYBOX, False),
    ("busybox@sha256:short", False), ("", False)])
def test_only_a_digest_pins_an_image(image, pinned):
    assert (digest_ref(image) is not None) is pinned
