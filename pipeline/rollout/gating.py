"""The gate runner: after a sync, gate each app it applied, record the healthy, roll back the
failed.

    sync result ─► gate each app's stable Deployments (watch.gate_synced)
                   ├─► healthy: its ledger says healthy (one commit for every app)
                   └─► failed: rollback.after_failed_gate (each app on its own)
                               or rollback.after_failed_unit (apps promoted as one unit)

A canary step's verdict (canary_verdict) is the canary Deployments' gate with its analysis while
it bakes.

Every run returns a GateOutcome: each app's verdict and, when one failed, the GateFailed that
says how the rollback after it went. The caller raises it (or reports it); nothing here raises
for a failed gate, so a reader sees at the call where a failure leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pipeline import names
from pipeline.config import App, CanaryPolicy, Environment, Slot
from pipeline.context import Context
from pipeline.errors import GateFailed
from pipeline.gitops import overlay, routing
from pipeline.gitops.canary_overlay import CanaryState
from pipeline.gitops.ledger import Outcome
from pipeline.gitops.records import Release
from pipeline.kube.apply import SyncResult
from pipeline.rollout import rollback
from pipeline.rollout.analysis import Analysis, fill, missing_services, track_values
from pipeline.rollout.gate import GateResult
from pipeline.rollout.handover import canary_deployments
from pipeline.rollout.watch import WatchOptions, gate_environment, gate_synced, wait_healthy

AppReleases = list[tuple[App, Release]]


@dataclass(frozen=True)
class GateOutcome:
    """What gating a sync came to."""

    # each app's verdict; None: nothing to gate
    gates: dict[str, GateResult | None] = field(default_factory=dict)
    # an app failed: how its rollback went, for the caller to raise
    failure: GateFailed | None = None
    # no app released in the environment: its own gate, if any
    environment: GateResult | None = None

    @property
    def first(self) -> GateResult | None:
        """The verdict to show: the first app's that had something to gate, else the
        environment's."""
        return next((g for g in self.gates.values() if g is not None), self.environment)


def failures(gates: dict[str, GateResult | None]) -> dict[str, GateResult]:
    """The failed verdicts among `gates`, by app."""
    return {name: g for name, g in gates.items() if g is not None and not g.passed}


def verdicts(
    ctx: Context, env: Environment, result: SyncResult, releases: AppReleases
) -> dict[str, GateResult | None]:
    """Each app's gate after one sync of ENV, all taken before anything is rolled back."""
    return {
        app.name: gate_synced(ctx, Slot(env, app.name), result, rel.id) for app, rel in releases
    }


def gate_current(ctx: Context, env: Environment, result: SyncResult) -> GateOutcome:
    """After `ship sync`: gate every app's current release in ENV, each rolled back on its own;
    with no app released there, every Deployment the sync applied."""
    current = [
        (ctx.config.apps[n], rel)
        for n in ctx.workspace.apps_in(env)
        if n in ctx.config.apps and (rel := ctx.workspace.current_release(Slot(env, n))) is not None
    ]
    if not current:
        return GateOutcome(environment=gate_environment(ctx, env, result))
    return gate_apps(ctx, env, result, current, together=False)


def gate_apps(
    ctx: Context, env: Environment, result: SyncResult, releases: AppReleases, *, together: bool
) -> GateOutcome:
    """Gate each app a sync applied. `together`: they were promoted as one unit, so one failure
    sends them all back (rollback.after_failed_unit); else each app is rolled back on its own,
    and the outcome carries the first failure once every app was gated."""
    return (
        _gate_unit(ctx, env, result, releases)
        if together
        else _gate_each(ctx, env, result, releases)
    )


def _gate_each(
    ctx: Context, env: Environment, result: SyncResult, releases: AppReleases
) -> GateOutcome:
    gates: dict[str, GateResult | None] = {}
    failure: GateFailed | None = None
    healthy = []
    for app, rel in releases:
        gate = gates[app.name] = gate_synced(ctx, Slot(env, app.name), result, rel.id)
        if gate is not None and not gate.passed:
            # this app back before the next is gated
            failed = rollback.after_failed_gate(ctx, app, env, rel, gate)
            failure = failure or failed
            continue
        ctx.progress(str(gate) if gate else f"{app.name}: nothing to gate")
        entry = ctx.workspace.ledger(Slot(env, app.name)).find(rel.id)
        if gate is not None and (entry is None or entry.outcome is Outcome.PENDING):
            healthy.append((rel, Outcome.HEALTHY, ""))
    if healthy:
        ctx.workspace.record_outcomes(env, healthy)  # one commit for every app that passed
    return GateOutcome(gates, failure)


def _gate_unit(
    ctx: Context, env: Environment, result: SyncResult, releases: AppReleases
) -> GateOutcome:
    gates = verdicts(ctx, env, result, releases)
    for name, gate in gates.items():
        ctx.progress(f"{name}: {gate}" if gate else f"{name}: nothing to gate")
    if failures(gates):
        return GateOutcome(gates, rollback.after_failed_unit(ctx, env, releases, gates))
    ctx.workspace.record_outcomes(env, [(rel, Outcome.HEALTHY, "") for _, rel in releases])
    return GateOutcome(gates)


def canary_verdict(
    ctx: Context, app: App, env: Environment, state: CanaryState, policy: CanaryPolicy
) -> GateResult:
    """The canary's rollout and pod gates, with HTTP and Prometheus analysis while it bakes."""
    step = state.steps[state.step]
    base_objects, _ = ctx.workspace.base_of(app, Slot(env, app.name))
    deployments = canary_deployments(ctx, app, Slot(env, app.name))
    service = routing.service_for(base_objects, overlay.patched_workloads(app, base_objects)[0])
    tracks = track_values(env.namespace, app.name, *(service or (app.name, 80)))
    checks = Analysis(policy, tracks, ctx.http(), ctx.cluster(env), ctx.progress)
    missing = missing_services(
        ctx.cluster(env),
        [fill(c.url, t) for c in policy.http for t in tracks.values()]
        + [fill(u, tracks[names.CANARY]) for u in policy.urls()],
    )
    if missing:
        return GateResult(
            passed=False,
            gate="analysis",
            subject=missing,
            reason="NotFound",
            message="an analysis check names a Service that does not exist",
            elapsed=0.0,
        )
    ctx.progress(
        f"analysing {', '.join(deployments)} for {step.bake:.0f}s "
        f"every {policy.interval:.0f}s: rollout, pods"
        + (f", {len(policy.http)} HTTP check(s) against the stable" if policy.http else "")
        + (f", {len(policy.prometheus)} Prometheus quer(y/ies)" if policy.prometheus else "")
        + (
            f", users' traffic through the gateway ({policy.traffic.provider})"
            if policy.traffic
            else ""
        )
        + (f"; undecided at the end, on up to {policy.max_bake:.0f}s" if policy.max_bake else "")
    )
    watch = WatchOptions(
        release_id=state.release.id,
        analysis=checks if checks else None,
        interval=policy.interval,
        max_bake=policy.max_bake,
        progress=ctx.progress,
        clock=ctx.clock,
    )
    return wait_healthy(
        ctx.cluster(env), env.namespace, deployments, replace(env.gates, bake=step.bake), watch
    )
