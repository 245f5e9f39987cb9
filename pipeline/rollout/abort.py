"""`ship abort ENV`: take a canary down, leaving the stable release untouched.

    weight 0 first (routing back to 100% stable, canary still running) ─► sync ─► canary objects
    removed, the release marked rejected, an abort record committed ─► sync

Also removes a canary a crash left live after git no longer had it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.config import App, Environment, Slot
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.gitops import canary_overlay, overlay
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.kube.lock import EnvironmentLock
from pipeline.rollout import handover
from pipeline.rollout.sync import sync_environment


@dataclass
class AbortResult:
    environment: str
    # the aborted canaries' release ids; None when only a leftover canary was removed
    release: str | None
    reason: str
    commit: Commit | None
    apps: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "release": self.release,
            "apps": list(self.apps),
            "reason": self.reason,
            "commit": self.commit.sha if self.commit else None,
        }

    def text(self) -> str:
        if self.release:
            refs = ", ".join(
                f"{a}@{r}" for a, r in zip(self.apps, self.release.split(", "), strict=False)
            )
            return (
                f"aborted the canary of {self.release if len(self.apps) < 2 else refs} "
                f"in {self.environment}: "
                f"{self.reason}"
            )
        return f"removed a leftover canary from {self.environment}"


def abort(ctx: Context, env: Environment, reason: str, app: str | None = None) -> AbortResult:
    """Abort ENV's canaries (APP's only, when given)."""
    cluster = ctx.cluster(env)
    ctx.workspace.guard_secrets(env, [])  # before anything is written or applied
    if app is not None:
        ctx.config.app(app)  # an unknown app names ship.yaml's
    with EnvironmentLock(cluster, env.name, env.namespace, ctx.lock, ctx.progress):
        states = [s for s in canary_in_progress(ctx, env) if app is None or s.release.app == app]
        if not states:
            if app is not None:
                raise PromotionError(f"no canary of {app} in {env.name}: nothing to abort")
            return _remove_leftover(ctx, env, reason)
        return _abort(ctx, env, states, reason)


def canary_in_progress(ctx: Context, env: Environment) -> list[canary_overlay.CanaryState]:
    return [
        s
        for name in ctx.workspace.apps_in(env)
        if (s := ctx.workspace.canary_state(Slot(env, name)))
    ]


def _remove_leftover(ctx: Context, env: Environment, reason: str) -> AbortResult:
    leftovers = ctx.cluster(env).list(
        "apps/v1", "Deployment", env.namespace, selector=f"{names.TRACK}={names.CANARY}"
    )
    if not leftovers:
        raise PromotionError(f"no canary in {env.name}: nothing to abort")
    ctx.progress(
        f"no canary in git; removing {len(leftovers)} "
        f"leftover canary Deployment(s) by syncing {env.name}"
    )
    sync_environment(ctx, env)
    return AbortResult(env.name, None, reason, None)


def _abort(
    ctx: Context, env: Environment, states: list[canary_overlay.CanaryState], reason: str
) -> AbortResult:
    refs = ", ".join(s.release.ref for s in states)
    apps = [ctx.config.app(s.release.app) for s in states]
    ctx.progress(f"aborting {', '.join(s.describe() for s in states)} in {env.name}: {reason}")
    handover.route_to_stable(
        ctx,
        env,
        [
            (app, state, ctx.workspace.base_of(app, Slot(env, app.name))[0])
            for app, state in zip(apps, states, strict=True)
        ],
    )
    title = f"abort({env.name}): {refs} canary at {states[0].weight}%: {reason}"
    plans = [
        (Slot(env, app.name), _removal(ctx, app, Slot(env, app.name), state, reason))
        for app, state in zip(apps, states, strict=True)
    ]
    rel = states[0].release
    fields = rel.trailers() if len(states) == 1 else {"Apps": refs, "Environment": env.name}
    commit = ctx.workspace.publish_many(
        env, apps, plans, lambda: names.commit_message(title, "abort", fields)
    )
    sync_environment(ctx, env)
    ctx.progress(f"canaries removed; the stables of {env.name} untouched; {refs} rejected")
    return AbortResult(
        env.name,
        ", ".join(s.release.id for s in states),
        reason,
        commit,
        tuple(s.release.app for s in states),
    )


def _removal(ctx: Context, app: App, slot: Slot, state: canary_overlay.CanaryState, reason: str):
    base_objects, _ = ctx.workspace.base_of(app, slot)
    stable = ctx.workspace.current_release(slot)

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str]:
        files = canary_overlay.plan_removed(
            current, app, slot, base_objects, stable.config if stable else None
        )
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(slot.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(
            state.release, Outcome.REJECTED, reason, ctx.clock.iso()
        ).dumps()
        return files, ""

    return plan
