"""`ship status [ENV]`: what runs where. Reads git and the cluster; changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline import names
from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import ShipError
from pipeline.gitops import canary_overlay as canary
from pipeline.gitops import overlay
from pipeline.kube import apply, health
from pipeline.policy import guard
from pipeline.rollout.sync import desired_objects


@dataclass(frozen=True)
class EnvironmentStatus:
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
    freeze: str | None = None  # why the environment is frozen now (a window, a freeze commit), one line

    def to_json(self) -> dict:
        return asdict(self)


def environment_status(ctx: Context, env: Environment) -> EnvironmentStatus:
    files = ctx.workspace.files(env)
    rel = overlay.current_release(files, env)
    state = canary.read_state(files, env)
    base: dict[str, Any] = dict(environment=env.name, namespace=env.namespace, release=rel.id if rel else None,
                image=rel.image if rel else None, digest=rel.image.split("@sha256:")[1][:12] if rel else None,
                config=rel.config if rel else None, canary=state.describe() if state else None,
                last_change=rel.created_at if rel else None, freeze=_freeze(ctx, env))
    try:
        cluster = ctx.cluster(env)
    except ShipError as exc:
        return EnvironmentStatus(**base, health="Unknown", health_message="cluster unreachable", drift=None,
                                 error=str(exc))
    if rel is None:
        return EnvironmentStatus(**base, health="not released", health_message="", drift=None)
    workloads = cluster.list("apps/v1", "Deployment", env.namespace, selector=names.env_selector(env.name))
    base["canary"] = canary_text(state, [w for w in workloads if names.is_canary(w["metadata"]["name"])])
    assessed = [health.assess(w) for w in workloads if not names.is_canary(w["metadata"]["name"])]
    worst = health.worst([h for h in assessed if h]) if assessed else None
    verdict = dict(health=worst.code.value if worst else "not deployed", health_message=worst.message if worst else "")
    try:
        result = apply.reconcile(cluster, env.name, env.namespace, desired_objects(ctx.config, env, cluster),
                                 apply.SyncOptions(dry_run=True))
    except ShipError as exc:
        return EnvironmentStatus(**base, **verdict, drift=None, error=str(exc))
    return EnvironmentStatus(**base, **verdict, drift=bool(result.plan.to_apply or result.plan.prune))


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


def summary_line(s: EnvironmentStatus) -> str:
    """`prod: r7 stable, r8 canary 10% (step 1/1)`."""
    stable = f"{s.release} stable" if s.release else "nothing released"
    return f"{s.environment}: {stable}" + (f", {s.canary}" if s.canary else "")
