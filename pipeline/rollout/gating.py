"""After a sync: gate what it applied, record a healthy release, roll back a failed one.

    sync result ─► gate the stable Deployments it applied ─► healthy: ledger says healthy
                                                         └─► failed: rollback.after_failed_gate
"""

from __future__ import annotations

from pipeline.config import App, Environment, Slot
from pipeline.context import Context
from pipeline.errors import GateFailed
from pipeline.gitops.ledger import Outcome
from pipeline.gitops.records import Release
from pipeline.kube.apply import SyncResult
from pipeline.rollout import rollback
from pipeline.rollout.gate import GateResult
from pipeline.rollout.watch import gate_environment, gate_synced


def gate_and_record(ctx: Context, app: App | None, env: Environment, result: SyncResult,
                    release: Release | None) -> GateResult | None:
    """Gate what a sync applied for APP; healthy is recorded in APP's ledger, failure rolls APP
    back (GateFailed). Without an app, every Deployment the sync applied is gated."""
    if app is None or release is None:
        return gate_environment(ctx, env, result)
    slot = Slot(env, app.name)
    gate = gate_synced(ctx, slot, result, release.id)
    if gate is None:
        return gate
    if not gate.passed:
        rollback.after_failed_gate(ctx, app, env, release, gate)
    ctx.progress(str(gate))
    entry = ctx.workspace.ledger(slot).find(release.id)
    if entry is None or entry.outcome is Outcome.PENDING:
        ctx.workspace.record_outcome(env, release, Outcome.HEALTHY)
    return gate


def gate_apps(ctx: Context, env: Environment, result: SyncResult, releases: list[tuple[App, Release]],
              together: bool) -> dict[str, GateResult | None]:
    """Gate each app a sync applied. `together`: they were promoted as one unit, so one failure
    sends them all back (rollback.after_failed_unit); else each app is rolled back on its own
    and the first failure is raised once every app was gated."""
    if not together:
        gates: dict[str, GateResult | None] = {}
        failure: GateFailed | None = None
        healthy = []
        for app, rel in releases:
            gate = gates[app.name] = gate_synced(ctx, Slot(env, app.name), result, rel.id)
            if gate is not None and not gate.passed:
                try:
                    rollback.after_failed_gate(ctx, app, env, rel, gate)
                except GateFailed as exc:
                    failure = failure or exc
                continue
            ctx.progress(str(gate) if gate else f"{app.name}: nothing to gate")
            entry = ctx.workspace.ledger(Slot(env, app.name)).find(rel.id)
            if gate is not None and (entry is None or entry.outcome is Outcome.PENDING):
                healthy.append((rel, Outcome.HEALTHY, ""))
        if healthy:
            ctx.workspace.record_outcomes(env, healthy)  # one commit for every app that passed
        if failure is not None:
            raise failure
        return gates
    gates = {app.name: gate_synced(ctx, Slot(env, app.name), result, rel.id) for app, rel in releases}
    for name, gate in gates.items():
        ctx.progress(f"{name}: {gate}" if gate else f"{name}: nothing to gate")
    if any(g is not None and not g.passed for g in gates.values()):
        rollback.after_failed_unit(ctx, env, releases, gates)
    ctx.workspace.record_outcomes(env, [(rel, Outcome.HEALTHY, "") for _, rel in releases])
    return gates
