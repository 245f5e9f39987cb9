"""The deploy commands' decisions, end to end through the flows, on an in-memory cluster and a
temporary git repository (tests/fakes.py). The same flows run against the real local parts in
tests/rollout/test_*_live.py; these are the fast tier."""

from __future__ import annotations

import pytest
import yaml

from pipeline.commands import deploy
from pipeline.config import Slot
from pipeline.errors import ConfigError, GateFailed, PromotionError, ValidationError
from pipeline.gitops.ledger import Outcome
from pipeline.rollout.canary import CanaryOutcome, CanaryResult
from tests.fakes import GOOD, NEVER_READY, OTHER, fake_context, fake_project


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    lines: list[str] = []
    ctx, cluster, registry = fake_context(tmp_path, lines)
    ctx.fake_registry = registry  # type: ignore[attr-defined]
    yield ctx, cluster, lines
    ctx.close()


def outcomes(ctx, env: str) -> list[tuple[str, str]]:
    return [(e.release.id, e.outcome.value) for e in ctx.workspace.environment_ledger(ctx.config.env(env)).entries]


def new_config(ctx, env: str, message: str) -> None:
    path = ctx.config.root / f"apps/hellok8s/config/{env}.env"
    path.write_text(f"MESSAGE={message}\nDB_URL=postgres://db\n")
    ctx.workspace.git.repo.git.commit("-qam", message)


def test_release_writes_commits_syncs_gates_and_records_healthy(flow):
    ctx, cluster, _ = flow
    result = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert result.changed and result.gate is not None and result.gate.passed
    dep = cluster.deployment("hk-dev", "hellok8s")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == GOOD.replace(":1111111@", ":1111111@")
    assert outcomes(ctx, "dev") == [(result.release.id, "healthy")]
    message = ctx.workspace.git.repo.git.log("-2", "--format=%B")
    assert f"Ship-Release: {result.release.id}" in message and "Ship-Action: release" in message
    assert "s3cret" not in (ctx.config.root / "environments/dev/hellok8s/kustomization.yaml").read_text()


def test_release_again_is_a_no_op(flow):
    ctx, _, _ = flow
    first = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    again = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), sync=False))
    assert again.release.id == first.release.id and not again.changed and again.commit is None


def test_a_release_that_never_gets_ready_is_rolled_back_and_rejected(flow):
    ctx, cluster, _ = flow
    good = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    new_config(ctx, "dev", "broken build")
    with pytest.raises(GateFailed, match="ProgressDeadlineExceeded.*rolled back to " + good.release.id):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(NEVER_READY,)))
    assert ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")).id == good.release.id
    assert dict(outcomes(ctx, "dev")) == {good.release.id: "rolled back to", rejected_id(ctx): "rejected"}
    assert "never-ready" not in cluster.deployment("hk-dev", "hellok8s")["spec"]["template"]["spec"]["containers"][0]["image"]


def rejected_id(ctx) -> str:
    return next(e.release.id for e in ctx.workspace.environment_ledger(ctx.config.env("dev")).entries if e.outcome is Outcome.REJECTED)


def test_a_rejected_release_is_not_released_again_without_allow_rejected(flow):
    ctx, _, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    new_config(ctx, "dev", "broken build")
    with pytest.raises(GateFailed):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(NEVER_READY,)))
    with pytest.raises(PromotionError, match="was rejected in dev.*--allow-rejected"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(NEVER_READY,)))


def test_promote_refuses_a_wrong_edge_and_an_empty_source(flow):
    ctx, _, _ = flow
    with pytest.raises(PromotionError, match="dev → prod is not a promotion edge in ship.yaml"):
        deploy.promote(ctx, "dev", "prod")
    with pytest.raises(PromotionError, match="nothing is released to dev yet"):
        deploy.promote(ctx, "dev", "uat")


def test_promote_refuses_a_source_that_is_unhealthy_live(flow):
    ctx, cluster, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    cluster.deployment("hk-dev", "hellok8s")["status"]["availableReplicas"] = 1
    with pytest.raises(PromotionError, match="dev is not healthy: Deployment/hk-dev/hellok8s Progressing"):
        deploy.promote(ctx, "dev", "uat")


def test_promote_carries_the_digest_with_the_target_config(flow):
    ctx, cluster, _ = flow
    rel = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    result = deploy.promote(ctx, "dev", "uat")
    assert result.release.id == rel.id and result.release.image == rel.image and result.source == "dev"
    cm = cluster.get("v1", "ConfigMap", result.release.config, "hk-uat")
    assert cm["data"]["MESSAGE"] == "Hello from uat"
    assert result.text().startswith(f"promoted hellok8s@{rel.id} from dev to uat")


def to_prod(ctx, config_message: str | None = None):
    if config_message:
        new_config(ctx, "dev", config_message)
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    return deploy.promote(ctx, "uat", "prod")


def test_first_prod_release_has_no_stable_to_run_beside_so_no_canary(flow):
    ctx, _, lines = flow
    result = to_prod(ctx)
    assert not isinstance(result, CanaryResult)
    assert any("no stable release yet: promoting directly" in line for line in lines)


def test_canary_steps_then_promotes_and_removes_the_canary(flow):
    ctx, cluster, _ = flow
    to_prod(ctx)
    result = to_prod(ctx, "second edition")
    assert isinstance(result, CanaryResult) and result.outcome is CanaryOutcome.PROMOTED
    assert [s["weight"] for s in result.steps] == [10, 50]
    assert result.steps[0]["live_weights"] == {"hellok8s": 90, "hellok8s-canary": 10}
    assert "hellok8s-canary" not in cluster.names("Deployment", "hk-prod")
    route = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "hellok8s", "hk-prod")
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100]
    assert outcomes(ctx, "prod")[-1] == (result.release.id, "healthy")
    assert ctx.workspace.canary_state(Slot(ctx.config.env("prod"), "hellok8s")) is None


def test_a_canary_that_never_gets_ready_is_aborted_before_it_gets_any_traffic(flow):
    """The canary warms up at weight 0 (rollout/handover.py): never ready, it is aborted with no
    step committed, and the abort commits cleanly though the canary's files never reached git."""
    ctx, cluster, _ = flow
    stable = to_prod(ctx).release
    cluster.never_ready.add("hellok8s-canary")
    with pytest.raises(GateFailed, match="canary 10% failed: Deployment/hk-prod/hellok8s-canary ProgressDeadlineExceeded"):
        to_prod(ctx, "second edition")
    subjects = ctx.workspace.git.repo.git.log("-3", "--format=%s").splitlines()
    assert subjects[0].startswith("abort(prod): ") and not any(s.startswith("canary(prod)") for s in subjects)
    assert ctx.workspace.git.repo.git.status("--porcelain") == ""
    assert "hellok8s-canary" not in cluster.names("Deployment", "hk-prod")
    route = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "hellok8s", "hk-prod")
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100]
    assert ctx.workspace.current_release(Slot(ctx.config.env("prod"), "hellok8s")).id == stable.id
    assert outcomes(ctx, "prod")[-1][1] == Outcome.REJECTED.value


def test_held_canary_then_abort_leaves_the_stable_and_rejects_the_release(flow):
    ctx, cluster, _ = flow
    stable = to_prod(ctx).release
    new_config(ctx, "dev", "second edition")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    held = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(canary_weight=10, hold=True))
    assert held.outcome is CanaryOutcome.HELD and "held as a canary in prod" in held.text()
    assert "hellok8s-canary" in cluster.names("Deployment", "hk-prod")
    aborted = deploy.abort(ctx, "prod", "looks off")
    assert aborted.release == held.release.id
    assert "hellok8s-canary" not in cluster.names("Deployment", "hk-prod")
    assert ctx.workspace.current_release(Slot(ctx.config.env("prod"), "hellok8s")).id == stable.id
    assert outcomes(ctx, "prod")[-1] == (held.release.id, Outcome.REJECTED.value)
    with pytest.raises(PromotionError, match="was rejected in prod; it is not promoted again"):
        deploy.promote(ctx, "uat", "prod")


def test_abort_with_no_canary_is_refused(flow):
    ctx, _, _ = flow
    to_prod(ctx)
    with pytest.raises(PromotionError, match="no canary in prod: nothing to abort"):
        deploy.abort(ctx, "prod", "why not")


def test_manual_rollback_returns_to_the_previous_healthy_release(flow):
    ctx, cluster, _ = flow
    first = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    new_config(ctx, "dev", "second edition")
    second = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    result = deploy.rollback(ctx, "dev", None, None, "bad copy")
    assert (result.replaced.id, result.target.id) == (second.id, first.id)
    assert result.text().startswith(f"rolled back dev: {second.ref} → {first.id}")
    dep = cluster.deployment("hk-dev", "hellok8s")
    assert dep["metadata"]["annotations"]["ship.dev/release"] == first.id
    assert dict(outcomes(ctx, "dev")) == {first.id: "rolled back to", second.id: "rolled back"}
    body = ctx.workspace.git.repo.git.log("-1", "--format=%B")
    assert f"Ship-Replaced: {second.id}" in body and "Ship-Action: rollback" in body


def test_sync_reports_its_changes_and_gates(flow):
    ctx, _, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), sync=False))
    result = deploy.sync(ctx, "dev")
    assert result.gate is not None and result.gate.passed
    assert any(str(c).startswith("deployment.apps/hellok8s") for c in result.changes)
    assert yaml.safe_load(__import__("json").dumps(result.to_json()))["environment"] == "dev"


def test_two_runs_racing_to_release_one_commit_get_two_ids(tmp_path, monkeypatch):
    """Two clones (two CI runs) release two builds of one commit; the one that pushes second
    re-plans on the remote's ledger and gets its own id: no release vanishes from the ledger."""
    import git

    fake_project(tmp_path / "origin")
    bare = tmp_path / "remote.git"
    git.Repo(tmp_path / "origin").clone(bare, bare=True)
    runs = []
    for name in ("a", "b"):
        repo = git.Repo.clone_from(str(bare), tmp_path / name)
        with repo.config_writer() as cw:
            cw.set_value("user", "name", name)
            cw.set_value("user", "email", f"{name}@example.com")
        runs.append(fake_context(tmp_path / name, [])[0])
    first = deploy.release(runs[0], "dev", None, deploy.ReleaseOptions(images=(GOOD,), sync=False))
    second = deploy.release(runs[1], "dev", None, deploy.ReleaseOptions(images=(OTHER,), sync=False))  # planned on a stale ledger
    assert second.release.id == f"{first.release.id}.2"
    assert [e.release.id for e in runs[1].workspace.environment_ledger(runs[1].config.env("dev")).entries] == \
        [first.release.id, second.release.id]


def test_a_config_file_larger_than_a_configmap_is_refused_at_once_naming_it(flow):
    ctx, _, _ = flow
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("BIG=" + "x" * (1024 * 1024 + 1) + "\n")
    ctx.workspace.git.repo.git.commit("-qam", "huge config")
    with pytest.raises(ConfigError, match=r"apps/hellok8s/config/dev.env: more than 1,048,576 bytes; a ConfigMap holds at most 1,048,576"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")) is None


SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: leaked}\ndata: {password: aHVudGVyMg==}\n"


def commit_leaked_secret(ctx) -> None:
    overlay = ctx.config.root / "environments/dev"
    (overlay / "leaked.yaml").write_text(SECRET)
    kz = overlay / "kustomization.yaml"
    kz.write_text(kz.read_text().replace("resources:\n", "resources:\n- leaked.yaml\n"))
    ctx.workspace.git.repo.git.add("--all")
    ctx.workspace.git.repo.git.commit("-qm", "a hand-written secret")


def test_sync_refuses_a_committed_secret_with_data_before_applying_anything(flow):
    ctx, cluster, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    commit_leaked_secret(ctx)
    before = dict(cluster.objects)
    with pytest.raises(ValidationError, match="environments/dev/leaked.yaml: a Secret with data must never be committed"):
        deploy.sync(ctx, "dev")
    assert cluster.objects == before and cluster.get("v1", "Secret", "leaked", "hk-dev") is None


def test_rollback_refuses_a_committed_secret_with_data_with_nothing_changed(flow):
    ctx, cluster, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    new_config(ctx, "dev", "second edition")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    commit_leaked_secret(ctx)
    head, before = ctx.workspace.git.head().sha, dict(cluster.objects)
    with pytest.raises(ValidationError, match="leaked.yaml: a Secret with data must never be committed"):
        deploy.rollback(ctx, "dev", None, None, "try")
    assert ctx.workspace.git.head().sha == head and ctx.workspace.git.dirty_paths() == [] and cluster.objects == before


def test_a_held_canary_promoted_again_with_hold_stays_held(flow):
    """Re-running `promote --hold` (a CI retry, or after a crash) must not finish the canary: only
    `--resume` or `ship abort` decide a held one."""
    ctx, cluster, lines = flow
    stable = to_prod(ctx).release
    new_config(ctx, "dev", "second edition")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    held = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(canary_weight=10, hold=True))
    again = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(canary_weight=10, hold=True))
    assert again.outcome is CanaryOutcome.HELD and again.commits == []
    assert ctx.workspace.current_release(Slot(ctx.config.env("prod"), "hellok8s")).id == stable.id
    assert "hellok8s-canary" in cluster.names("Deployment", "hk-prod")
    assert any(f"{held.release.id} is already held" in line for line in lines)


def test_the_same_rollback_run_again_is_a_no_op_that_succeeds(flow):
    """A rollback killed after its commit, or a retried rollback job, runs `--to R` again: R is
    already current, so it syncs and says so instead of failing."""
    ctx, cluster, _ = flow
    first = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    new_config(ctx, "dev", "second edition")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.rollback(ctx, "dev", None, first.id, "bad copy")
    head = ctx.workspace.git.head().sha
    again = deploy.rollback(ctx, "dev", None, first.id, "bad copy")
    assert again.already and again.commit is None and ctx.workspace.git.head().sha == head
    assert again.text().startswith(f"dev is already on {first.ref}; nothing to roll back")
    assert cluster.deployment("hk-dev", "hellok8s")["metadata"]["annotations"]["ship.dev/release"] == first.id


def test_a_release_records_the_commit_its_image_was_built_from_not_head(flow):
    ctx, _, _ = flow
    first = ctx.workspace.git.repo.git.rev_list("--max-parents=0", "HEAD")
    new_config(ctx, "dev", "a later commit")
    head = ctx.workspace.git.head().sha
    rel = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    assert rel.image_commit == first and rel.commit == head != first and rel.id.endswith(head[:7])
    assert f"Ship-Image-Commit: {first}" in ctx.workspace.git.repo.git.log("--format=%B", "-3")


def test_an_image_older_than_the_current_release_is_refused_unless_allowed(flow):
    ctx, _, _ = flow
    first = ctx.workspace.git.repo.git.rev_list("--max-parents=0", "HEAD")
    new_config(ctx, "dev", "a later commit")
    ctx.fake_registry.revisions["hellok8s-other"] = ctx.workspace.git.head().sha  # OTHER: built from the newer commit
    newer = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(OTHER,))).release
    with pytest.raises(PromotionError, match=f"built from {first[:7]}, older than the image of dev's current release {newer.id}.*--allow-older"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")).id == newer.id
    older = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), allow_older=True)).release
    assert older.image_commit == first
    assert "Ship-Allow-Older: yes" in ctx.workspace.git.repo.git.log("--format=%B", "-3")


def test_an_image_whose_source_commit_is_unknown_is_refused(flow):
    ctx, _, _ = flow
    ctx.fake_registry.revision = ""
    with pytest.raises(PromotionError, match="cannot tell which commit it was built from: its tag 1111111 is not a commit"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
