"""`ship abort ENV`: take a canary down, leaving the stable release untouched.

    weight 0 first (routing back to 100% stable, canary still running) ─► sync ─► canary objects
    removed, the release marked rejected, an abort record committed ─► sync

Also removes a canary a crash left live after git no longer had it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.gitops import canary_overlay, overlay
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.kube.lock import EnvironmentLock, LockOptions
from pipeline.rollout.sync import sync_environment
from pipeline.rollout.traffic import live_weights, weights_text


@dataclass
class AbortResult:
    environment: str
    release: str | None  # None when only a leftover canary was removed
    reason: str
    commit: Commit | None

    def to_json(self) -> dict:
        return {"environment": self.environment, "release": self.release, "reason": self.reason,
                "commit": self.commit.sha if self.commit else None}

    def text(self) -> str:
        if self.release:
            return f"aborted the canary of {self.release} in {self.environment}: {self.reason}"
        return f"removed a leftover canary from {self.environment}"


def abort(ctx: Context, env: Environment, reason: str) -> AbortResult:
    cluster = ctx.cluster(env)
    ctx.workspace.guard_secrets(env, [])  # before anything is written or applied
    with EnvironmentLock(cluster, env.name, env.namespace, LockOptions(), ctx.progress):
        state = ctx.workspace.canary_state(env)
        if state is None:
            return _remove_leftover(ctx, env, reason)
        return _abort(ctx, env, state, reason)


def _remove_leftover(ctx: Context, env: Environment, reason: str) -> AbortResult:
    leftovers = ctx.cluster(env).list("apps/v1", "Deployment", env.namespace, selector=f"{names.TRACK}={names.CANARY}")
    if not leftovers:
        raise PromotionError(f"no canary in {env.name}: nothing to abort")
    ctx.progress(f"no canary in git; removing {len(leftovers)} leftover canary Deployment(s) by syncing {env.name}")
    sync_environment(ctx, env)
    return AbortResult(env.name, None, reason, None)


def _abort(ctx: Context, env: Environment, state: canary_overlay.CanaryState, reason: str) -> AbortResult:
    rel = state.release
    app = ctx.config.app(rel.app)
    base_objects, _ = ctx.workspace.base_of(app, env)
    ctx.progress(f"aborting {state.describe()} in {env.name}: {reason}")
    ctx.workspace.write(env, canary_overlay.plan_weight_zero(ctx.workspace.files(env), app, env, state, base_objects))
    sync_environment(ctx, env)
    ctx.progress(f"weight 0: live weights: {weights_text(live_weights(ctx.cluster(env), env))}")
    stable = ctx.workspace.current_release(env)
    title = f"abort({env.name}): {app.name} {rel.id} canary at {state.weight}%: {reason}"

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str]:
        files = canary_overlay.plan_removed(current, app, env, base_objects, stable.config if stable else None)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(rel, Outcome.REJECTED, reason, ctx.clock.iso()).dumps()
        return files, names.commit_message(title, "abort", rel.trailers())

    commit = ctx.workspace.publish(env, [app], plan)
    sync_environment(ctx, env)
    ctx.progress(f"canary removed; {env.name} stays on {stable.id if stable else '-'}; {rel.id} rejected")
    return AbortResult(env.name, rel.id, reason, commit)
