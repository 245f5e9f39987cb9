"""`ship status [ENV]`: what runs where. Reads git and the cluster; changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline import names
from pipeline.config import Environment, Slot
from pipeline.context import Context
from pipeline.errors import ShipError
from pipeline.gitops import canary_overlay as canary
from pipeline.gitops import overlay
from pipeline.kube import apply, health
from pipeline.policy import guard
from pipeline.state.desired import desired_objects


@dataclass(frozen=True)
class EnvironmentStatus:
    """One app in one environment (app None: an environment nothing was released to)."""

    environment: str
    namespace: str
    release: str | None
    image: str | None
    digest: str | None  # short
    config: str | None
    health: str  # Healthy, Progressing, Degraded, ... or "not deployed"
    health_message: str
    drift: bool | None  # None when it could not be checked
    canary: str | None
    last_change: str | None
    error: str | None = None
    # why the environment is frozen now (a window, a freeze commit), one line
    freeze: str | None = None
    app: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


UNREACHABLE = "cluster unreachable"


def environment_status(ctx: Context, env: Environment) -> list[EnvironmentStatus]:
    """A row per app of ENV (one row when nothing is released there), from git and the cluster."""
    return live_status(ctx, env, git_status(ctx, env))


def git_status(ctx: Context, env: Environment) -> list[dict[str, Any]]:
    """What git says of each app of ENV (git is read one environment at a time)."""
    return [_from_git(ctx, slot) for slot in ctx.workspace.slots(env)] or [
        _nothing_released(ctx, env)
    ]


def slot_status(ctx: Context, slot: Slot) -> EnvironmentStatus:
    """The row of one app of an environment, from git and the cluster."""
    return live_status(ctx, slot.env, [_from_git(ctx, slot)])[0]


def live_status(
    ctx: Context, env: Environment, rows: list[dict[str, Any]]
) -> list[EnvironmentStatus]:
    """The rows `git_status` made, with what ENV's cluster says (safe to run for several
    environments at once: it reads files and asks the cluster, never git)."""
    try:
        cluster = ctx.cluster(env)
    except ShipError as exc:
        return [
            EnvironmentStatus(
                **base, health="Unknown", health_message=UNREACHABLE, drift=None, error=str(exc)
            )
            for base in rows
        ]
    if all(base["release"] is None for base in rows):
        return [
            EnvironmentStatus(**base, health="not released", health_message="", drift=None)
            for base in rows
        ]
    workloads = cluster.list(
        "apps/v1", "Deployment", env.namespace, selector=names.env_selector(env.name)
    )
    try:
        desired = desired_objects(ctx.config, env, cluster, credentials=ctx.credentials)
        result = apply.reconcile(
            cluster, env.name, env.namespace, desired, apply.SyncOptions(dry_run=True)
        )
        changed: list[dict] | None = result.plan.to_apply + result.plan.prune
        error = None
    except ShipError as exc:
        changed, error = None, str(exc)
    return [_live_row(ctx, env, base, workloads, changed, error) for base in rows]


def _of_app(obj: dict, app: str | None) -> bool:
    return app is None or (obj["metadata"].get("labels") or {}).get(names.APP_LABEL, app) == app


def _from_git(ctx: Context, slot: Slot) -> dict[str, Any]:
    files = ctx.workspace.slot_files(slot)
    rel = overlay.current_release(files, slot)
    state = canary.read_state(files, slot)
    return dict(
        environment=slot.env.name,
        namespace=slot.env.namespace,
        app=slot.app,
        release=rel.id if rel else None,
        image=rel.image if rel else None,
        digest=rel.image.split("@sha256:")[1][:12] if rel else None,
        config=rel.config if rel else None,
        canary=state.describe() if state else None,
        last_change=rel.created_at if rel else None,
        freeze=_freeze(ctx, slot.env),
    )


def _nothing_released(ctx: Context, env: Environment) -> dict[str, Any]:
    """ENV's one row while no app is released there."""
    return dict(
        environment=env.name,
        namespace=env.namespace,
        app=None,
        release=None,
        image=None,
        digest=None,
        config=None,
        canary=None,
        last_change=None,
        freeze=_freeze(ctx, env),
    )


def _live_row(
    ctx: Context,
    env: Environment,
    base: dict[str, Any],
    workloads: list[dict],
    changed: list[dict] | None,
    error: str | None,
) -> EnvironmentStatus:
    app = base["app"]
    mine = [w for w in workloads if _of_app(w, app)]
    state = ctx.workspace.canary_state(Slot(env, app)) if app else None
    base = {
        **base,
        "canary": canary_text(state, [w for w in mine if names.is_canary(w["metadata"]["name"])]),
    }
    assessed = [health.assess(w) for w in mine if not names.is_canary(w["metadata"]["name"])]
    worst = health.worst([h for h in assessed if h]) if assessed else None
    verdict = dict(
        health=worst.code.value if worst else "not deployed",
        health_message=worst.message if worst else "",
    )
    drift = None if changed is None else any(_of_app(o, app) for o in changed)
    return EnvironmentStatus(**base, **verdict, drift=drift, error=error)


def _freeze(ctx: Context, env: Environment) -> str | None:
    held = guard.freezes(ctx, env)
    return held[0].line() if held else None


def canary_text(state: canary.CanaryState | None, live: list[dict]) -> str | None:
    """The canary as git and the cluster see it, including what a crash left half-done."""
    if state is None:
        if live:
            rel = (live[0]["metadata"].get("annotations") or {}).get(names.RELEASE, "?")
            return f"leftover canary {rel} in the cluster (not in git): ship abort removes it"
        return None
    if not live:
        return f"{state.describe()}, not applied: re-run the promote or ship abort"
    health_of = [health.assess_deployment(d) for d in live]
    worst = health.worst(health_of)
    return f"{state.describe()}, {worst.code.value}" if worst and not worst.ok else state.describe()


def summary_line(s: EnvironmentStatus, *, alone: bool = True) -> str:
    """`prod: r7 stable, r8 canary 10% (step 1/1)`; `prod/web: …` where apps share the
    environment."""
    stable = f"{s.release} stable" if s.release else "nothing released"
    where = f"{s.environment}/{s.app}" if s.app and not alone else s.environment
    return f"{where}: {stable}" + (f", {s.canary}" if s.canary else "")
