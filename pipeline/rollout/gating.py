"""After a sync: gate what it applied, record a healthy release, roll back a failed one.

    sync result ─► gate the stable Deployments it applied ─► healthy: ledger says healthy
                                                         └─► failed: rollback.after_failed_gate
"""

from __future__ import annotations

from pipeline.config import App, Environment
from pipeline.context import Context
from pipeline.gitops.ledger import Outcome
from pipeline.gitops.records import Release
from pipeline.kube.apply import SyncResult
from pipeline.rollout import rollback
from pipeline.rollout.gate import GateResult
from pipeline.rollout.watch import gate_synced


def gate_and_record(ctx: Context, app: App | None, env: Environment, result: SyncResult,
                    release: Release | None) -> GateResult | None:
    """Gate what a sync applied; healthy is recorded in the ledger, failure rolls back (GateFailed)."""
    gate = gate_synced(ctx, env, result, release.id if release else None)
    if gate is None or release is None or app is None:
        return gate
    if not gate.passed:
        rollback.after_failed_gate(ctx, app, env, release, gate)
    ctx.progress(str(gate))
    entry = ctx.workspace.ledger(env).find(release.id)
    if entry is None or entry.outcome is Outcome.PENDING:
        ctx.workspace.record_outcome(env, release, Outcome.HEALTHY)
    return gate
