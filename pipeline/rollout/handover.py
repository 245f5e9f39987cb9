"""Handing users' traffic between a stable and its canary without a failed request: the canary's
pods are ready before the router sends them anyone, and keep serving until the router has
stopped sending them anyone.

The API server holds new weights at once; the gateway applies them a moment later (Traefik
rebuilds its routers after its provider throttle, a cloud load balancer after tens of seconds).
A weight on pods not yet ready, or pods removed while the gateway still sends them users, means
503s from the gateway. Argo Rollouts scales a canary up before it sets a weight, and waits
`abortScaleDownDelaySeconds` before scaling one down, for the same reasons.

    warm up:  the canary applied at weight 0 ─► its Deployments healthy ─► (the step sets the
              weight)
    drain:    weight 0 applied ─► the gateway reports the route's new generation (HTTPRoute status,
              Accepted.observedGeneration; bounded) ─► canary.scale_down_delay more ─► (canary
              removed)

A route no controller reports on (no HTTPRoute status parents; no Ingress load-balancer address)
has no data plane ship can see, so a drain has nothing to wait for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipeline import names
from pipeline.config import App, CanaryPolicy, Environment, Slot
from pipeline.context import Context
from pipeline.gitops import canary_overlay, overlay
from pipeline.gitops.canary_overlay import CanaryState
from pipeline.gitops.ledger import LEDGER_FILE
from pipeline.gitops.workspace import OverlayPlan
from pipeline.rollout.gate import GateResult
from pipeline.rollout.sync import sync_environment
from pipeline.rollout.watch import WatchOptions, wait_healthy
from pipeline.state.traffic import live_weights, weights_text

ACCEPT_TIMEOUT = 30.0  # seconds to wait for a gateway to report a route's new generation
POLL = 0.5


def warm_up_step(
    ctx: Context, env: Environment, canaries: list[tuple[App, CanaryState, OverlayPlan]]
) -> list[GateResult] | None:
    """Before a canary's first step is committed: warm_up with each (app, canary, the step's overlay
    plan)'s files. None when there is nothing to warm up: a later step, the replicas router (no
    weight to hold back), or a step already in git (a re-run after a crash)."""
    if (env.canary or CanaryPolicy()).router == "replicas" or canaries[0][1].step != 0:
        return None
    planned = [plan(ctx.workspace.slot_files(Slot(env, app.name))) for app, _, plan in canaries]
    if not all(planned):
        return None
    return warm_up(
        ctx,
        env,
        [(app, state, p[0]) for (app, state, _), p in zip(canaries, planned, strict=True) if p],
    )


def warm_up(
    ctx: Context, env: Environment, canaries: list[tuple[App, CanaryState, overlay.OverlayFiles]]
) -> list[GateResult]:
    """Apply each (app, canary, its step's planned files) with the canary at weight 0, and wait for
    the canaries' Deployments to be healthy: each app's verdict. Nothing is committed (the step is,
    next); a failed verdict leaves the canary for an abort to take down."""
    before: list[tuple[Slot, dict[str, str | None]]] = []
    for app, state, planned in canaries:
        slot = Slot(env, app.name)
        base_objects, _ = ctx.workspace.base_of(app, slot)
        unrouted = {
            **planned.files,
            **canary_overlay.plan_weight_zero(planned.files, app, slot, state, base_objects).files,
        }
        unrouted.pop(LEDGER_FILE, None)  # the step's commit records it, once
        now = ctx.workspace.slot_files(slot)
        before.append((slot, {p: now.get(p) for p in unrouted}))
        ctx.workspace.write_slot(slot, overlay.OverlayFiles(unrouted))
    synced = sync_environment(ctx, env)
    if synced.hook is not None:  # a pre hook failed (kube/hooks.py): the canaries were not applied
        return [synced.hook[1]] * len(canaries)
    ctx.progress("warming up: the canary's pods start at weight 0 and get users only once ready")
    verdicts = [
        wait_healthy(
            ctx.cluster(env),
            env.namespace,
            canary_deployments(ctx, app, Slot(env, app.name)),
            replace(env.gates, bake=0.0),
            WatchOptions(release_id=state.release.id, progress=ctx.progress, clock=ctx.clock),
        )
        for app, state, _ in canaries
    ]
    # the tree as git has it again: the step's commit writes it whole
    if all(v.passed for v in verdicts):
        for slot, files in before:
            ctx.workspace.write_slot(slot, overlay.OverlayFiles(files))
    return verdicts


def canary_deployments(ctx: Context, app: App, slot: Slot) -> list[str]:
    base_objects, _ = ctx.workspace.base_of(app, slot)
    return [
        names.canary_name(w["metadata"]["name"])
        for w in overlay.patched_workloads(app, base_objects)
    ]


def route_to_stable(
    ctx: Context, env: Environment, canaries: list[tuple[App, CanaryState, list[dict]]]
) -> None:
    """Weight 0 for each (app, canary, the base objects whose Services route), synced; then
    drain."""
    for app, state, base_objects in canaries:
        slot = Slot(env, app.name)
        files = ctx.workspace.slot_files(slot)
        ctx.workspace.write_slot(
            slot, canary_overlay.plan_weight_zero(files, app, slot, state, base_objects)
        )
    sync_environment(ctx, env)
    ctx.progress(f"weight 0: live weights: {weights_text(live_weights(ctx.cluster(env), env))}")
    drain(ctx, env)


def drain(ctx: Context, env: Environment) -> None:
    """Wait until ENV's router has had time to route away from its canaries (gateway, nginx)."""
    policy = env.canary or CanaryPolicy()
    if policy.router == "replicas":
        return  # the canary's pods are endpoints of the stable Service: removing them is the switch
    routes = _routes(ctx, env, policy.router)
    if not any(_reported(r) for r in routes):
        return
    if policy.router == "gateway":
        _await_accepted(ctx, env, routes)
    if policy.scale_down_delay > 0:
        ctx.progress(
            f"draining: the canary keeps serving {policy.scale_down_delay:g}s more while the "
            f"{policy.router} router catches up (canary.scale_down_delay)"
        )
        ctx.clock.sleep(policy.scale_down_delay)


def _routes(ctx: Context, env: Environment, router: str) -> list[dict[str, Any]]:
    api, kind = (
        ("gateway.networking.k8s.io/v1", "HTTPRoute")
        if router == "gateway"
        else ("networking.k8s.io/v1", "Ingress")
    )
    return ctx.cluster(env).list(api, kind, env.namespace, selector=names.env_selector(env.name))


def _reported(route: dict[str, Any]) -> bool:
    status = route.get("status") or {}
    return bool(status.get("parents") or (status.get("loadBalancer") or {}).get("ingress"))


def _await_accepted(ctx: Context, env: Environment, routes: list[dict[str, Any]]) -> None:
    deadline = ctx.clock.monotonic() + ACCEPT_TIMEOUT
    while True:
        behind = [r["metadata"]["name"] for r in routes if not route_accepted(r)]
        if not behind:
            return
        if ctx.clock.monotonic() >= deadline:
            ctx.progress(
                f"warning: the gateway has not reported HTTPRoute {', '.join(behind)} at its new "
                f"generation within {ACCEPT_TIMEOUT:g}s; removing the canary after the delay anyway"
            )
            return
        ctx.clock.sleep(POLL)
        routes = _routes(ctx, env, "gateway")


def route_accepted(route: dict[str, Any]) -> bool:
    """Whether every gateway that reports on ROUTE has accepted its current generation. A route
    no gateway reports on (no status: no controller writes one) has nothing to wait for."""
    generation = int((route.get("metadata") or {}).get("generation") or 0)
    for parent in (route.get("status") or {}).get("parents") or []:
        accepted = [c for c in parent.get("conditions") or [] if c.get("type") == "Accepted"]
        if not accepted or int(accepted[0].get("observedGeneration") or 0) < generation:
            return False
    return True
