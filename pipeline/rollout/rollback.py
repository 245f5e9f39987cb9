"""Rollback: put an environment back on an earlier release, automatically or by hand.

    re-apply the target release (its pinned image and its config version, recreated from the
    ledger when the overlay no longer has it) ─► gate it ─► commit and push the rollback record

Automatic rollback follows a failed gate after `ship release` or `ship sync` and marks the
failed release rejected, so nothing promotes it by accident. A rollback that fails its own
gate is reported and stops: ship never rolls back a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import App, Environment
from pipeline.context import Context
from pipeline.errors import GateFailed, PromotionError
from pipeline.gitops import overlay
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import Entry, Ledger, Outcome
from pipeline.gitops.records import Release
from pipeline.kube.apply import SyncResult
from pipeline.rollout import release as releasing
from pipeline.rollout.gate import GateResult
from pipeline.rollout.sync import sync_environment
from pipeline.rollout.watch import gate_synced


@dataclass
class RollbackResult:
    target: Release
    replaced: Release | None
    gate: GateResult | None
    sync: SyncResult
    commit: Commit | None
    already: bool = False  # ENV was on the target already: nothing was rolled back or recorded

    def to_json(self) -> dict:
        return {"environment": self.target.environment, "release": self.target.id, "changed": not self.already,
                "replaced": self.replaced.id if self.replaced else None,
                "gate": self.gate.to_json() if self.gate else None}

    def text(self) -> str:
        if self.already:
            return f"{self.target.environment} is already on {self.target.id}; nothing to roll back" + (
                f"\n{self.gate}" if self.gate else "")
        was = f"{self.replaced.id} → " if self.replaced else ""
        return f"rolled back {self.target.environment}: {was}{self.target.id}" + (f"\n{self.gate}" if self.gate else "")


def choose_target(ledger: Ledger, current: Release | None, to: str | None) -> Entry:
    """The ledger entry a rollback returns to: `to`, or the newest runnable one before `current`."""
    if to:
        entry = ledger.find(to)
        if entry is None:
            raise PromotionError(f"release {to} is not in this environment's ledger (see ship history)")
        if entry.outcome is Outcome.REJECTED:
            raise PromotionError(f"release {to} was rejected ({entry.reason}); roll back to a healthy release")
        if current and entry.release.id == current.id:
            raise PromotionError(f"release {to} is already the current release")
        return entry
    entry = ledger.last_runnable(excluding=current.id if current else None)
    if entry is None:
        raise PromotionError("no earlier healthy release to roll back to (see ship history)")
    return entry


def roll_back(ctx: Context, app: App, env: Environment, target: Entry, replaced: Release | None,
              replaced_outcome: Outcome, reason: str) -> RollbackResult:
    """Apply `target` from the working tree, gate it, then record in git what the cluster runs."""
    rel = target.release
    arrow = f"{replaced.id} → {rel.id}" if replaced else rel.id
    ctx.workspace.guard_secrets(env, [app])  # before anything is written or applied
    ctx.progress(f"rolling back {env.name}: {arrow} ({reason})")
    base_objects, base_rel = ctx.workspace.base_of(app, env)
    ctx.workspace.write(env, overlay.plan_release(ctx.workspace.files(env), app, env, rel, base_objects, base_rel))
    result = sync_environment(ctx, env)
    gate = gate_synced(ctx, env, result, rel.id)
    passed = gate is None or gate.passed
    outcome = Outcome.ROLLED_BACK_TO if passed else Outcome.ROLLBACK_FAILED

    def change(ledger: Ledger, _rel: Release) -> Ledger:
        if replaced is not None:
            ledger = ledger.record(replaced, replaced_outcome, reason, ctx.clock.iso())
        return ledger.record(rel, outcome, reason, ctx.clock.iso())

    commit = releasing.write_release(ctx, app, env, rel, always=True, action="rollback",
                                     title=f"rollback({env.name}): {arrow}: {reason}", ledger_change=change,
                                     extra={"Replaced": replaced.id if replaced else None, "Outcome": outcome.value,
                                            "Replaced-Outcome": replaced_outcome.value if replaced else None}).commit
    if not passed:
        raise GateFailed(f"{env.name}: the rollback to {rel.id} failed its gate too ({gate}); "
                         "stopped without rolling back further: fix it by hand or roll back to another release", gate)
    ctx.progress(str(gate) if gate else f"{env.name} is on {rel.id}")
    return RollbackResult(rel, replaced, gate, result, commit)


def after_failed_gate(ctx: Context, app: App, env: Environment, failed: Release, gate: GateResult) -> None:
    """Automatic rollback to the last healthy release; always ends with GateFailed."""
    reason = f"{gate.subject} {gate.reason}"
    ctx.progress(f"gate failed: {gate}")
    target = ctx.workspace.ledger(env).last_runnable(excluding=failed.id)
    if target is None:
        ctx.workspace.record_outcome(env, failed, Outcome.REJECTED, reason)
        raise GateFailed(f"{env.name}: {failed.id} failed its gate ({gate}); no earlier healthy release to roll "
                         "back to", gate)
    roll_back(ctx, app, env, target, failed, Outcome.REJECTED, reason)
    raise GateFailed(f"{env.name}: {failed.id} failed its gate ({gate}); rolled back to {target.release.id}", gate)


def manual(ctx: Context, app: App, env: Environment, to: str | None, reason: str) -> RollbackResult:
    current = ctx.workspace.current_release(env)
    if to and current and current.id == to:
        # Already there (the same rollback run again, after a crash or by a retried job): make
        # sure the cluster runs it, record nothing.
        ctx.progress(f"{env.name} is already on {to}; syncing so the cluster runs it")
        result = sync_environment(ctx, env)
        return RollbackResult(current, None, gate_synced(ctx, env, result, current.id), result, None, already=True)
    target = choose_target(ctx.workspace.ledger(env), current, to)
    return roll_back(ctx, app, env, target, current, Outcome.ROLLED_BACK, reason)
