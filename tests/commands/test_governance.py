"""Release governance end to end through the commands, on the in-memory cluster, registry and
cosign of tests/fakes.py and a temporary git repository: freezes (windows and by hand), their
overrides, signatures, older releases. The same rules run on the local parts in
tests/policy/test_governance_live.py."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from typer.testing import CliRunner

from pipeline import config
from pipeline.cli import app
from pipeline.commands import deploy, govern, inspect
from pipeline.config import Slot
from pipeline.errors import BuildError, FrozenError, SignatureError
from pipeline.rollout.canary import CanaryResult
from pipeline.supply.build import build_app
from pipeline.supply.verify import VerifiedPin
from tests.fakes import DIGEST_GOOD, GOOD, OTHER, SHIP_YAML, fake_context, fake_project

TODAY = dt.datetime.now(dt.UTC).date()
AROUND_NOW = f"{{name: launch, from: {TODAY - dt.timedelta(days=1)}, to: {TODAY + dt.timedelta(days=1)}, timezone: Asia/Tokyo}}"
SIGNED = "{require_signature: true, public_key: keys/a.pub}"


def with_policy(text: str, env: str, policy: str) -> str:
    """SHIP_YAML with `policy: POLICY` (flow style) in ENV."""
    if f"  {env}: {{namespace:" in text:
        return text.replace(f"  {env}: {{namespace: hk-{env},", f"  {env}: {{namespace: hk-{env}, policy: {policy},")
    return text.replace(f"    namespace: hk-{env}\n", f"    namespace: hk-{env}\n    policy: {policy}\n")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A factory: the fake project with policies {env: flow-style policy}; (ctx, cluster, lines)."""
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    monkeypatch.delenv("SHIP_COSIGN_KEY", raising=False)
    monkeypatch.delenv("SHIP_ACTOR", raising=False)
    contexts = []

    def make(policies: dict[str, str] | None = None):
        fake_project(tmp_path)
        text = SHIP_YAML
        for env, policy in (policies or {}).items():
            text = with_policy(text, env, policy)
        (tmp_path / "ship.yaml").write_text(text)
        (tmp_path / "keys").mkdir()
        for name in ("a", "b"):  # the fake cosign's key files hold a key name
            (tmp_path / f"keys/{name}.pub").write_text(f"key-{name}\n")
            (tmp_path / f"keys/{name}.key").write_text(f"key-{name}\n")
        repo = __import__("git").Repo(tmp_path)
        repo.git.add("--all")
        repo.git.commit("-qm", "policies and keys")
        lines: list[str] = []
        ctx, cluster, _ = fake_context(tmp_path, lines)
        contexts.append(ctx)
        return ctx, cluster, lines

    yield make
    for ctx in contexts:
        ctx.close()


def head(ctx) -> str:
    return ctx.workspace.git.repo.head.commit.hexsha


def log(ctx, *args: str) -> str:
    return ctx.workspace.git.repo.git.log(*args)


def new_config(ctx, message: str) -> None:
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\n")
    ctx.workspace.git.repo.git.commit("-qam", message)


def to_prod(ctx, message: str | None = None, **promote):
    if message:
        new_config(ctx, message)
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    return deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(**promote))


def ledger_entry(ctx, env: str, release_id: str):
    return ctx.workspace.environment_ledger(ctx.config.env(env)).find(release_id)


# ── freezes ─────────────────────────────────────────────────────────────────────────────────

def test_a_frozen_prod_refuses_a_promotion_naming_the_freeze_commit(project):
    ctx, cluster, _ = project()
    stable = to_prod(ctx).release
    frozen = govern.freeze(ctx, "prod", "payment provider incident")
    assert frozen.text() == f"froze prod until `ship unfreeze prod`: payment provider incident (commit {frozen.commit.short})"
    assert "Ship-Action: freeze\nShip-Environment: prod\nShip-Freeze-Reason: payment provider incident" in log(ctx, "-1", "--format=%B")
    new_config(ctx, "second edition")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    before = head(ctx)
    with pytest.raises(FrozenError) as refused:
        deploy.promote(ctx, "uat", "prod")
    assert refused.value.exit_code == 75
    assert str(refused.value).startswith(f"prod is frozen by freeze commit {frozen.commit.short} (ship-test <ship-test@example.com>, ")
    assert "): payment provider incident until `ship unfreeze`; nothing was written" in str(refused.value)
    assert head(ctx) == before and ctx.workspace.current_release(Slot(ctx.config.env("prod"), "hellok8s")).id == stable.id
    assert cluster.deployment("hk-prod", "hellok8s")["metadata"]["annotations"]["ship.dev/release"] == stable.id


def test_an_override_goes_through_and_is_recorded_in_the_trailers_and_the_ledger(project):
    ctx, _, _ = project()
    to_prod(ctx)
    sha = govern.freeze(ctx, "prod", "launch week").commit.short
    result = to_prod(ctx, "second edition", override_freeze="fix for checkout, approved by Ann")
    assert isinstance(result, CanaryResult) and result.outcome.value == "promoted"
    bodies = log(ctx, f"-{len(result.commits)}", "--format=%B")
    assert bodies.count("Ship-Override-Reason: fix for checkout, approved by Ann") == len(result.commits)
    assert f"Ship-Override-Freeze: freeze commit {sha} (ship-test <ship-test@example.com>, " in bodies
    assert "Ship-Override-By: ship-test <ship-test@example.com>" in bodies
    entry = ledger_entry(ctx, "prod", result.release.id)
    assert entry.outcome.value == "healthy"  # the override stays on the entry after its gate
    assert entry.override.startswith("freeze overridden by ship-test <ship-test@example.com>: fix for checkout, "
                                     f"approved by Ann (freeze commit {sha} ")
    history = inspect.history(ctx, "prod")
    assert history.to_json()["releases"][0]["override"] == entry.override
    assert "freeze overridden by ship-test" in history.text()


def test_a_window_freezes_a_release_and_an_override_names_it(project):
    ctx, _, _ = project({"dev": f"{{freeze: [{AROUND_NOW}]}}"})
    with pytest.raises(FrozenError, match=r"^dev is frozen by window 'launch' \(\d{4}-\d\d-\d\d – \d{4}-\d\d-\d\d "
                                          r"Asia/Tokyo\) until \d{4}-\d\d-\d\dT15:00:00Z; nothing was written"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    result = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), override_freeze="the launch itself"))
    assert result.gate.passed
    assert "Ship-Override-Freeze: window 'launch' (" in log(ctx, "-2", "--format=%B")
    window = f"window 'launch' ({TODAY - dt.timedelta(days=1)} – {TODAY + dt.timedelta(days=1)} Asia/Tokyo)"
    assert ledger_entry(ctx, "dev", result.release.id).override == (
        f"freeze overridden by ship-test <ship-test@example.com>: the launch itself ({window})")


def test_rollbacks_and_aborts_go_through_a_freeze(project):
    ctx, cluster, _ = project()
    first = to_prod(ctx).release
    held = to_prod(ctx, "second edition", canary_weight=10, hold=True)
    govern.freeze(ctx, "prod", "incident")
    aborted = deploy.abort(ctx, "prod", "looks off")
    assert aborted.release == held.release.id and "hellok8s-canary" not in cluster.names("Deployment", "hk-prod")
    govern.unfreeze(ctx, "prod")
    new_config(ctx, "third edition")
    third = to_prod(ctx, no_canary=True).release
    govern.freeze(ctx, "prod", "incident again")
    rolled = deploy.rollback(ctx, "prod", None, None, "checkout errors")
    assert (rolled.replaced.id, rolled.target.id) == (third.id, first.id)
    assert cluster.deployment("hk-prod", "hellok8s")["metadata"]["annotations"]["ship.dev/release"] == first.id


def test_unfreeze_lifts_it_and_a_freeze_until_a_time_lifts_itself(project):
    ctx, _, _ = project()
    to_prod(ctx)
    govern.freeze(ctx, "prod", "incident")
    lifted = govern.unfreeze(ctx, "prod", "resolved")
    assert lifted.text() == f"unfroze prod (commit {lifted.commit.short})" and not lifted.still
    assert not (ctx.config.root / "environments/prod/freeze.yaml").exists()
    assert log(ctx, "-1", "--format=%s") == "unfreeze(prod): resolved"
    assert govern.unfreeze(ctx, "prod").text() == "prod was not frozen by hand; nothing to do"
    govern.freeze(ctx, "prod", "short one", until="2h")
    with pytest.raises(FrozenError, match=r"until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; nothing was written"):
        to_prod(ctx, "second edition", no_canary=True)
    ctx.clock.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)  # type: ignore[method-assign]
    assert deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(no_canary=True)).changed


def test_a_freeze_before_anything_was_released_is_a_commit_too(project):
    ctx, _, _ = project()
    result = govern.freeze(ctx, "uat", "not yet")
    assert result.commit is not None and not ctx.workspace.git.dirty_paths()
    govern.unfreeze(ctx, "uat")
    assert (ctx.config.root / "environments/uat/.gitkeep").exists() and not ctx.workspace.git.dirty_paths()


def test_status_and_policy_show_the_freeze(project):
    ctx, _, _ = project({"prod": f"{{require_signature: false, freeze: [{AROUND_NOW}]}}"})
    status = inspect.status(ctx, "prod")
    assert status.rows[0].freeze.startswith("prod is frozen by window 'launch'")
    assert status.text().splitlines()[-1].endswith(": releases and promotions are held")
    report = govern.policy(ctx, "prod")
    assert report.to_json()["frozen"] is True and report.to_json()["frozen_by"][0]["source"].startswith("window 'launch'")
    assert report.text().startswith("prod is frozen by window 'launch'")
    assert re.search(r"window 'launch'\s+FROZEN since", report.text())


# ── the CLI: one line, exit 75 ────────────────────────────────────────────────────────────────

def test_the_cli_refuses_a_frozen_environment_with_exit_75_and_one_line(project, monkeypatch):
    ctx, _, _ = project()
    monkeypatch.chdir(ctx.config.root)
    monkeypatch.setenv("SHIP_REGISTRY", "127.0.0.1:15000")
    runner = CliRunner()
    out = runner.invoke(app, ["freeze", "prod", "--reason", "launch week", "--until", "2d"])
    assert out.exit_code == 0 and out.stdout.startswith("froze prod until 20"), out.output
    sha = log(ctx, "-1", "--format=%h")
    out = runner.invoke(app, ["release", "prod", "--image", GOOD])
    assert out.exit_code == 75
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"FrozenError: prod is frozen by freeze commit {sha} (")
    out = runner.invoke(app, ["promote", "uat", "prod", "--override-freeze"])
    assert out.exit_code == 2 and "--override-freeze needs --reason TEXT" in out.output
    data = json.loads(runner.invoke(app, ["policy", "prod", "--output", "json"]).stdout)
    assert data["frozen"] is True and data["frozen_by"][0]["reason"] == "launch week"
    assert runner.invoke(app, ["unfreeze", "prod"]).stdout.startswith("unfroze prod (commit ")
    assert json.loads(runner.invoke(app, ["policy", "prod", "-o", "json"]).stdout)["frozen"] is False


# ── signatures ───────────────────────────────────────────────────────────────────────────────

def test_an_unsigned_image_is_refused_before_any_commit(project):
    ctx, cluster, _ = project({"dev": SIGNED})
    before = head(ctx)
    with pytest.raises(SignatureError) as refused:
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert str(refused.value) == f"{GOOD}: not signed with keys/a.pub, which dev requires (no signatures found); nothing was written"
    assert head(ctx) == before and not cluster.objects
    assert not (ctx.config.root / "environments/dev/kustomization.yaml").exists()


def test_an_image_signed_with_another_key_is_refused(project):
    ctx, _, _ = project({"dev": SIGNED})
    ctx.signer().signatures[DIGEST_GOOD] = {"key-b"}
    with pytest.raises(SignatureError, match=r"not signed with keys/a.pub, which dev requires \(no matching signatures"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))


def test_a_signed_image_passes_from_dev_to_prod(project):
    ctx, _, _ = project({"dev": SIGNED, "uat": SIGNED, "prod": SIGNED})
    ctx.signer().signatures[DIGEST_GOOD] = {"key-a", "key-b"}
    to_prod(ctx)
    result = to_prod(ctx, "second edition")
    assert isinstance(result, CanaryResult) and result.outcome.value == "promoted"
    assert ctx.signer().verified.count(GOOD) >= 6  # dev, uat and prod, twice each
    assert log(ctx, "-1", "--format=%B").count("Ship-Signature: cosign, key keys/a.pub") == 1
    assert [r.text() for r in inspect.verify(ctx, "prod").pins] == [f"ok  {GOOD}  (signed with keys/a.pub)"]


def test_sync_and_verify_refuse_what_lost_its_signature(project):
    ctx, cluster, _ = project()
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    text = with_policy((ctx.config.root / "ship.yaml").read_text(), "dev", SIGNED)
    (ctx.config.root / "ship.yaml").write_text(text)
    ctx.workspace.git.repo.git.commit("-qam", "dev requires signatures")
    ctx.config = config.load(ctx.config.root, environ={})
    requests = cluster.requests
    with pytest.raises(SignatureError, match="which dev requires \\(no signatures found\\)"):
        deploy.sync(ctx, "dev")
    assert cluster.requests == requests  # nothing applied, not even read
    result = inspect.verify(ctx, "dev")
    assert isinstance(result.failure, SignatureError) and result.text().startswith(f"UNSIGNED  {GOOD}  (not signed with")


def test_build_signs_only_what_it_built_never_a_tag_it_found(project, monkeypatch):
    ctx, _, _ = project({"prod": SIGNED})
    registry = ctx.registry()
    source = ctx.workspace.git.last_change("apps/hellok8s")
    registry.digests[("hellok8s", source.sha)] = DIGEST_GOOD  # already built from this commit: found, not rebuilt
    registry.revisions["hellok8s"] = source.sha
    found = build_app(ctx, ctx.config.app(None))
    assert not found.signed and found.image.tag == source.sha and not found.built
    monkeypatch.setenv("SHIP_COSIGN_KEY", "key-a\n-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")  # the PEM itself
    again = build_app(ctx, ctx.config.app(None), key=str(ctx.config.root / "keys/b.key"))
    assert not again.signed and DIGEST_GOOD not in ctx.signer().signatures
    assert again.notes() == ["not signed: only an image this run built is signed; this one was found in the registry "
                             "(ship verify ENV checks its signature)"]


def test_build_refuses_a_found_tag_built_from_another_commit(project, monkeypatch):
    """Reproduction: someone who can push to the registry pushes app:<tag> before the build leg runs."""
    ctx, _, _ = project({"prod": SIGNED})
    registry = ctx.registry()
    source = ctx.workspace.git.last_change("apps/hellok8s")
    registry.digests[("hellok8s", source.sha)] = DIGEST_GOOD
    registry.revisions["hellok8s"] = "0" * 40  # its config says another commit (or nothing)
    monkeypatch.setenv("SHIP_COSIGN_KEY", "key-a\n-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    with pytest.raises(BuildError, match=f"hellok8s:{source.sha} is already in the registry but its "
                                         f"org.opencontainers.image.revision is 0{{40}}, not {source.sha}"):
        build_app(ctx, ctx.config.app(None))
    assert ctx.signer().signatures == {}


# ── older images ─────────────────────────────────────────────────────────────────────────────

def test_a_policy_that_allows_older_images_lets_one_in_without_the_flag(project):
    ctx, _, _ = project({"dev": "{allow_older: true}"})
    new_config(ctx, "a later commit")
    ctx.registry().revisions["hellok8s-other"] = ctx.workspace.git.head().sha  # OTHER: built from the newer commit
    newer = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(OTHER,))).release
    older = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    assert older.image_commit != newer.image_commit and ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")).id == older.id
    assert "Ship-Allow-Older" not in log(ctx, "-3", "--format=%B")  # the policy, in git, is the record
    assert {r.rule: r.now for r in govern.policy(ctx, "dev").view.rules}["older images"] == "allowed"


def test_verify_json_lists_each_pin_image_or_chart_by_its_ref():
    chart = "oci://127.0.0.1:5000/charts/podinfo:6.9.2@sha256:" + "c" * 64
    result = inspect.VerifyResult("dev", [VerifiedPin(ref=GOOD, ok=True, signature="signed with keys/a.pub"),
                                  VerifiedPin(ref=chart, ok=False, problem="version 6.9.2 now is archive sha256:d")])
    assert result.to_json() == {"environment": "dev", "ok": False, "pins": [
        {"ref": GOOD, "ok": True, "problem": "", "signature": "signed with keys/a.pub", "unsigned": False},
        {"ref": chart, "ok": False, "problem": "version 6.9.2 now is archive sha256:d", "signature": "", "unsigned": False}]}
    assert str(result.failure) == f"dev: {chart}: version 6.9.2 now is archive sha256:d"
    assert result.text().splitlines() == [f"ok  {GOOD}  (signed with keys/a.pub)",
                                          f"MOVED  {chart}  (version 6.9.2 now is archive sha256:d)"]
