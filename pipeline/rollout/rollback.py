"""Rollback: put an environment back on an earlier release, automatically or by hand.

    re-apply the target release (its pinned image and its config version, recreated from the
    ledger when the overlay no longer has it) ─► gate it ─► commit and push the rollback record

Automatic rollback follows a failed gate after `ship release` or `ship sync` and marks the
failed release rejected, so nothing promotes it by accident. A rollback that fails its own
gate is reported and stops: ship never rolls back a rollback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from pipeline.kube import apply
from pipeline.rollout import gates
from pipeline.gitops import overlay
from pipeline.rollout import sync as sync_mod
from pipeline.config import App, Environment, ShipConfig
from pipeline.errors import GateFailed, PromotionError
from pipeline.gitops.ledger import Entry, Ledger, Outcome
from pipeline.rollout.release import now_iso, read_ledger, read_overlay, record_outcome, write_overlay, write_release
from pipeline.gitops.render import render

Progress = Callable[[str], None]


@dataclass
class RollbackResult:
    target: overlay.Release
    replaced: overlay.Release | None
    gate: gates.GateResult
    sync: apply.SyncResult
    commit: object | None


def gate_environment(cfg: ShipConfig, env: Environment, result: apply.SyncResult, release_id: str | None,
                     progress: Progress = lambda _m: None) -> gates.GateResult | None:
    """Gate the Deployments a sync left in ENV; None when there are none to gate."""
    names = sorted({o["metadata"]["name"] for o in result.plan.to_apply + result.plan.unchanged
                    if o.get("kind") == "Deployment" and not o["metadata"]["name"].endswith("-canary")})
    if not names:
        return None
    cluster = sync_mod.connect(env)
    try:
        return gates.wait_healthy(cluster, env.namespace, names, env.gates, release_id, progress)
    finally:
        cluster.close()


def choose_target(ledger: Ledger, current: overlay.Release | None, to: str | None) -> Entry:
    if to:
        entry = ledger.find(to)
        if entry is None:
            raise PromotionError(f"release {to} is not in this environment's ledger (see ship history)")
        if entry.outcome == Outcome.REJECTED:
            raise PromotionError(f"release {to} was rejected ({entry.reason}); roll back to a healthy release")
        if current and entry.release.id == current.id:
            raise PromotionError(f"release {to} is already the current release")
        return entry
    entry = ledger.last_runnable(excluding=current.id if current else None)
    if entry is None:
        raise PromotionError("no earlier healthy release to roll back to (see ship history)")
    return entry


def rollback(cfg: ShipConfig, app: App, env: Environment, target: Entry, replaced: overlay.Release | None,
             replaced_outcome: str, reason: str, progress: Progress = lambda _m: None) -> RollbackResult:
    rel = target.release
    arrow = f"{replaced.id} → {rel.id}" if replaced else rel.id
    progress(f"rolling back {env.name}: {arrow} ({reason})")

    def change(ledger: Ledger, _rel: overlay.Release, outcome: str) -> Ledger:
        if replaced is not None:
            ledger = ledger.record(replaced, replaced_outcome, reason, now_iso())
        return ledger.record(rel, outcome, reason, now_iso())

    # Apply first, from the working tree, then record in git what the cluster now runs.
    base = cfg.root / app.path / app.base
    files = overlay.plan_release(read_overlay(cfg.root, env), app, env, rel, render(base, str(app.path / app.base)),
                            os.path.relpath(base, cfg.root / env.overlay))
    write_overlay(cfg.root, env, files)
    result = sync_mod.sync(cfg, env, progress=progress)
    gate = gate_environment(cfg, env, result, rel.id, progress)
    passed = gate is None or gate.passed
    outcome = Outcome.ROLLED_BACK_TO if passed else Outcome.ROLLBACK_FAILED
    title = f"rollback({env.name}): {arrow}: {reason}"
    commit = write_release(cfg, app, env, rel, always=True, summary=lambda r: _message(title, r, replaced),
                           ledger_change=lambda ledger, r: change(ledger, r, outcome), progress=progress).commit
    if not passed:
        raise GateFailed(f"{env.name}: the rollback to {rel.id} failed its gate too ({gate}); "
                         "stopped without rolling back further: fix it by hand or roll back to another release", gate)
    progress(str(gate) if gate else f"{env.name} is on {rel.id}")
    return RollbackResult(rel, replaced, gate, result, commit)


def _message(title: str, rel: overlay.Release, replaced: overlay.Release | None) -> str:
    return (f"{title}\n\nShip-Action: rollback\nShip-Release: {rel.id}\nShip-Environment: {rel.environment}\n"
            + (f"Ship-Replaced: {replaced.id}\n" if replaced else "") + f"Ship-Image: {rel.image}\nShip-Config: {rel.config}\n")


def after_failed_gate(cfg: ShipConfig, app: App, env: Environment, failed: overlay.Release, gate: gates.GateResult,
                      progress: Progress = lambda _m: None) -> None:
    """Automatic rollback to the last healthy release; always ends with GateFailed."""
    reason = f"{gate.subject} {gate.reason}"
    progress(f"gate failed: {gate}")
    ledger = read_ledger(cfg.root, env)
    target = ledger.last_runnable(excluding=failed.id)
    if target is None:
        record_outcome(cfg, env, failed, Outcome.REJECTED, reason)
        raise GateFailed(f"{env.name}: {failed.id} failed its gate ({gate}); no earlier healthy release to roll "
                         "back to", gate)
    rollback(cfg, app, env, target, failed, Outcome.REJECTED, reason, progress)
    raise GateFailed(f"{env.name}: {failed.id} failed its gate ({gate}); rolled back to {target.release.id}", gate)


def manual(cfg: ShipConfig, app: App, env: Environment, to: str | None, reason: str,
           progress: Progress = lambda _m: None) -> RollbackResult:
    current = overlay.current_release(read_overlay(cfg.root, env), env)
    target = choose_target(read_ledger(cfg.root, env), current, to)
    return rollback(cfg, app, env, target, current, Outcome.ROLLED_BACK, reason, progress)
