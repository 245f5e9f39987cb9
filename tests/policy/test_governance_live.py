"""Release governance on the local parts: a frozen prod refuses a promotion, an override goes
through and is recorded, a rollback goes through during a freeze, a window in another time
zone holds; images signed with cosign in the local registry: an unsigned one and one signed
with another key are refused before any commit, a signed one goes from dev to prod."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import git
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.image.registry import Registry
from pipeline.imageref import ImageRef
from tests.conftest import commit_all, cosign

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.binaries]


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def subjects(bare: Path) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


def body(bare: Path, grep: str) -> str:
    return git.Repo(bare).git.log("--format=%B", "-1", f"--grep={grep}", "main")


def add_policy(work: Path, policies: dict[str, str]) -> None:
    """Give environments a `policy:` (flow style) in the test repository's ship.yaml, committed."""
    cfg = work / "ship.yaml"
    text = cfg.read_text()
    for env, policy in policies.items():
        text = re.sub(rf"(\n  {env}:\n    namespace: [^\n]+\n)", rf"\1    policy: {policy}\n", text)
    cfg.write_text(text.replace("bake: 30s", "bake: 2s").replace("bake: 10s", "bake: 1s").replace("bake: 5s", "bake: 1s"))
    commit_all(work, "policies for this test; short bakes")


def new_config(work: Path, message: str) -> None:
    (work / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\n")
    commit_all(work, f"config: {message}")


def live_release(ns: str) -> str:
    out = subprocess.run(["kubectl", "-n", ns, "get", "deployment", "hellok8s", "-o", "json"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)["metadata"]["annotations"]["ship.dev/release"]


@pytest.fixture
def repo(env_repo, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "pw")
    monkeypatch.delenv("SHIP_COSIGN_KEY", raising=False)
    return env_repo


def test_freeze_refuses_a_promotion_an_override_is_recorded_and_a_rollback_goes_through(repo, hellok8s_image):
    work, bare, namespaces = repo
    add_policy(work, {})
    for args in (("release", "dev", "--image", hellok8s_image), ("promote", "dev", "uat"), ("promote", "uat", "prod")):
        assert ship(*args).exit_code == 0
    stable = live_release(namespaces["prod"])
    out = ship("freeze", "prod", "--reason", "payment provider incident")
    assert out.exit_code == 0, out.output
    freeze_sha = git.Repo(bare).git.log("-1", "--format=%h", "main")
    new_config(work, "second edition")
    assert ship("release", "dev", "--image", hellok8s_image).exit_code == 0
    assert ship("promote", "dev", "uat").exit_code == 0
    before = subjects(bare)
    refused = ship("promote", "uat", "prod")
    assert refused.exit_code == 75
    assert refused.stderr.startswith(f"FrozenError: prod is frozen by freeze commit {freeze_sha} (ship-test "
                                     "<ship-test@example.com>, ") and refused.stderr.count("\n") == 1
    assert subjects(bare) == before and live_release(namespaces["prod"]) == stable
    status = ship("status", "prod")
    assert f"prod is frozen by freeze commit {freeze_sha}" in status.stdout
    out = ship("promote", "uat", "prod", "--override-freeze", "--reason", "checkout fix, approved by the on-call",
               "--output", "json")
    assert out.exit_code == 0, out.output
    promoted = json.loads(out.stdout)
    assert live_release(namespaces["prod"]) == promoted["release"]["id"] != stable
    trailers = body(bare, "Ship-Override-Reason")
    assert "Ship-Override-Reason: checkout fix, approved by the on-call" in trailers
    assert f"Ship-Override-Freeze: freeze commit {freeze_sha} (" in trailers
    history = json.loads(ship("history", "prod", "--output", "json").stdout)["releases"]
    assert history[0]["outcome"] == "healthy"
    assert history[0]["override"].startswith("freeze overridden by ship-test <ship-test@example.com>: checkout fix")
    rolled = ship("rollback", "prod", "--reason", "the fix made it worse")  # frozen: rollbacks still go through
    assert rolled.exit_code == 0, rolled.output
    assert live_release(namespaces["prod"]) == stable and subjects(bare)[0].startswith("rollback(prod): ")
    assert ship("unfreeze", "prod").exit_code == 0 and subjects(bare)[0] == "unfreeze(prod)"


def test_a_window_in_another_time_zone_holds_uat(repo, hellok8s_image):
    work, bare, namespaces = repo
    # A weekly window around now, written in Tokyo's wall-clock time.
    tokyo = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    start, end = tokyo - dt.timedelta(minutes=30), tokyo + dt.timedelta(minutes=30)
    window = (f"{{name: tokyo-launch, from: \"{start:%a %H:%M}\", to: \"{end:%a %H:%M}\", timezone: Asia/Tokyo}}")
    add_policy(work, {"uat": f"{{freeze: [{window}]}}"})
    assert ship("release", "dev", "--image", hellok8s_image).exit_code == 0
    refused = ship("promote", "dev", "uat")
    assert refused.exit_code == 75
    assert f"FrozenError: uat is frozen by window 'tokyo-launch' ({start:%a %H:%M} – {end:%a %H:%M} Asia/Tokyo) until " \
           in refused.stderr
    assert not any(s.startswith("promote(uat)") for s in subjects(bare))
    ns = subprocess.run(["kubectl", "get", "namespace", namespaces["uat"]], capture_output=True, text=True)
    assert ns.returncode != 0  # nothing applied: the namespace was never made
    policy = json.loads(ship("policy", "uat", "--output", "json").stdout)
    assert policy["frozen"] and policy["frozen_by"][0]["source"].startswith("window 'tokyo-launch'")


@pytest.fixture
def keys(cosign_keys, repo):
    """Key A (its public half committed as cosign.pub: the one the policy names) and key B."""
    work = repo[0]
    a, b = cosign_keys("a"), cosign_keys("b")
    (work / "cosign.pub").write_text(a[1].read_text())
    return {"a": a, "b": b}


SIGNED = "{require_signature: true, public_key: cosign.pub}"


def test_an_unsigned_image_is_refused_before_any_commit(repo, keys, fresh_image):
    work, bare, namespaces = repo
    add_policy(work, {"dev": SIGNED})
    image = fresh_image("hellok8s-unsigned")
    before = subjects(bare)
    out = ship("release", "dev", "--image", image)
    assert out.exit_code == 1
    assert out.stderr.splitlines()[-1] == (f"SignatureError: {image}: not signed with cosign.pub, which dev requires "
                                           "(no signatures found); nothing was written")
    assert subjects(bare) == before and not (work / "environments/dev/kustomization.yaml").exists()
    assert subprocess.run(["kubectl", "get", "namespace", namespaces["dev"]], capture_output=True).returncode != 0


def test_an_image_signed_with_another_key_is_refused(repo, keys, fresh_image):
    work, bare, _ = repo
    add_policy(work, {"dev": SIGNED})
    image = fresh_image("hellok8s-other-key")
    ref = ImageRef.parse(image)
    signed = cosign("sign", "--yes", "--key", str(keys["b"][0]), "--tlog-upload=false", "--allow-http-registry",
                    f"{ref.repository}@{ref.digest}")
    assert signed.returncode == 0, signed.stderr
    before = subjects(bare)
    out = ship("release", "dev", "--image", image)
    assert out.exit_code == 1 and out.stderr.splitlines()[-1].startswith(
        f"SignatureError: {image}: not signed with cosign.pub, which dev requires (no matching signatures")
    assert subjects(bare) == before


def test_a_signed_image_passes_from_dev_to_prod(repo, keys, hellok8s_image, monkeypatch):
    work, bare, namespaces = repo
    add_policy(work, {"dev": SIGNED, "uat": SIGNED, "prod": SIGNED})
    monkeypatch.setenv("SHIP_COSIGN_KEY", keys["a"][0].read_text())  # the PEM itself, as a CI secret gives it
    # A build of the session's image is found in the registry: this run did not build it, so it never signs it.
    found = json.loads(ship("build", "--output", "json").stdout)
    assert found["image"] == hellok8s_image and found["built"] is False and found["signed"] is False
    (work / "apps/hellok8s/main.go").write_text((work / "apps/hellok8s/main.go").read_text() + "\n// signed\n")
    commit_all(work, "an app change: a build of its own")
    built = ship("build", "--output", "json")
    assert built.exit_code == 0, built.output
    data = json.loads(built.stdout)
    assert data["signed"] is True and data["built"] is True  # built by this run, so signed
    hellok8s_image = data["image"]
    for args in (("release", "dev", "--image", hellok8s_image), ("promote", "dev", "uat"), ("promote", "uat", "prod")):
        out = ship(*args)
        assert out.exit_code == 0, out.output
    assert live_release(namespaces["prod"]) == live_release(namespaces["dev"])
    assert "Ship-Signature: cosign, key cosign.pub" in body(bare, "^promote(prod)")
    verified = ship("verify", "prod")
    assert verified.exit_code == 0 and verified.stdout.strip() == f"ok  {hellok8s_image}  (signed with cosign.pub)"
    assert ship("sync", "prod").exit_code == 0
    ref = ImageRef.parse(hellok8s_image)
    registry = Registry(ref.registry)
    try:  # the signature lives in the registry beside the image, where cosign puts it
        assert registry.manifest_digest(ref.path, ref.digest.replace(":", "-") + ".sig") is not None
    finally:
        registry.close()
    assert yaml.safe_load((work / "ship.yaml").read_text())["environments"]["prod"]["policy"]["require_signature"]
