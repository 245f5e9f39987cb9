"""Rollback: put an environment back on an earlier release, automatically or by hand.

    re-apply the target release (its pinned image and its config version, recreated from the
    ledger when the overlay no longer has it) ─► gate it ─► commit and push the rollback record

Automatic rollback follows a failed gate after `ship release` or `ship sync` and marks the
failed release rejected, so nothing promotes it by accident. A rollback that fails its own
gate is reported and stops: ship never rolls back a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import App, Environment, Slot
from pipeline.context import Context
from pipeline.errors import ConfigError, GateFailed, PromotionError
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
        return {
            "environment": self.target.environment,
            "app": self.target.app,
            "release": self.target.id,
            "changed": not self.already,
            "replaced": self.replaced.id if self.replaced else None,
            "gate": self.gate.to_json() if self.gate else None,
        }

    def text(self) -> str:
        rel = self.target
        if self.already:
            return f"{rel.environment} is already on {rel.ref}; nothing to roll back" + (
                f"\n{self.gate}" if self.gate else ""
            )
        was = f"{self.replaced.ref} → " if self.replaced else ""
        return f"rolled back {rel.environment}: {was}{rel.id}" + (
            f"\n{self.gate}" if self.gate else ""
        )


def choose_target(ledger: Ledger, current: Release | None, to: str | None) -> Entry:
    """The ledger entry a rollback returns to: `to`, or the newest runnable one before `current`."""
    if to:
        entry = ledger.find(to)
        if entry is None:
            raise PromotionError(
                f"release {to} is not in this environment's ledger (see ship history)"
            )
        if entry.outcome is Outcome.REJECTED:
            raise PromotionError(
                f"release {to} was rejected ({entry.reason}); roll back to a healthy release"
            )
        if current and entry.release.id == current.id:
            raise PromotionError(f"release {to} is already the current release")
        return entry
    entry = ledger.last_runnable(excluding=current.id if current else None)
    if entry is None:
        raise PromotionError("no earlier healthy release to roll back to (see ship history)")
    return entry


@dataclass(frozen=True)
class Move:
    """One app of an environment going back to `target`, replacing `replaced` (then
    `replaced_outcome`)."""

    app: App
    target: Entry
    replaced: Release | None
    replaced_outcome: Outcome

    @property
    def arrow(self) -> str:
        rel = self.target.release
        return f"{self.app.name}@{self.replaced.id} → {rel.id}" if self.replaced else rel.ref


def roll_back(ctx: Context, env: Environment, move: Move, reason: str) -> RollbackResult:
    """One app back on its move's target (roll_back_many)."""
    return roll_back_many(ctx, env, [move], reason)[0]


def roll_back_many(
    ctx: Context, env: Environment, moves: list[Move], reason: str
) -> list[RollbackResult]:
    """Apply every move's target from the working tree, sync once, gate each app, then record in
    git, in one commit, what the cluster runs. GateFailed when any app's rollback failed its
    gate."""
    apps = [m.app for m in moves]
    ctx.workspace.guard_secrets(env, apps)  # before anything is written or applied
    arrows = ", ".join(m.arrow for m in moves)
    ctx.progress(f"rolling back {env.name}: {arrows} ({reason})")
    for m in moves:
        slot = Slot(env, m.app.name)
        base_objects, base_rel = ctx.workspace.base_of(m.app, slot, m.target.release)
        files = ctx.workspace.slot_files(slot)
        base = overlay.AppBase(base_objects, base_rel)
        ctx.workspace.write_slot(
            slot, overlay.plan_release(files, m.app, slot, m.target.release, base)
        )
    # a rehearsal (--dry-run) only dry-runs it, and gates nothing
    result = sync_environment(ctx, env)
    gates = {
        m.app.name: None
        if ctx.rehearsal
        else gate_synced(ctx, Slot(env, m.app.name), result, m.target.release.id)
        for m in moves
    }
    outcomes = {
        name: Outcome.ROLLED_BACK_TO if g is None or g.passed else Outcome.ROLLBACK_FAILED
        for name, g in gates.items()
    }
    by_app = {m.app.name: m for m in moves}

    def change(ledger: Ledger, rel: Release) -> Ledger:
        m = by_app[rel.app]
        if m.replaced is not None:
            ledger = ledger.record(m.replaced, m.replaced_outcome, reason, ctx.clock.iso())
        return ledger.record(rel, outcomes[rel.app], reason, ctx.clock.iso())

    one = moves[0]
    extra: dict[str, str | None] = {}
    if len(moves) == 1:
        extra = {
            "Replaced": one.replaced.id if one.replaced else None,
            "Outcome": outcomes[one.app.name].value,
            "Replaced-Outcome": one.replaced_outcome.value if one.replaced else None,
        }
    options = releasing.WriteOptions(
        action="rollback",
        title=f"rollback({env.name}): {arrows}: {reason}",
        always=True,
        ledger_change=change,
        extra=extra,
    )
    written = releasing.write_releases(
        ctx, env, [(m.app, m.target.release) for m in moves], options
    )
    failed = [m for m in moves if outcomes[m.app.name] is Outcome.ROLLBACK_FAILED]
    if failed:
        gate = gates[failed[0].app.name]
        raise GateFailed(
            f"{env.name}: the rollback to {failed[0].target.release.id} "
            f"failed its gate too ({gate}); "
            "stopped without rolling back further: fix it by hand or roll back to another release",
            gate,
        )
    results = []
    for m, w in zip(moves, written, strict=True):
        gate = gates[m.app.name]
        ctx.progress(str(gate) if gate else f"{env.name} runs {m.target.release.ref}")
        results.append(RollbackResult(m.target.release, m.replaced, gate, result, w.commit))
    return results


def after_failed_gate(
    ctx: Context, app: App, env: Environment, failed: Release, gate: GateResult
) -> GateFailed:
    """Automatic rollback to the last healthy release; the GateFailed saying how it went, for the
    caller to raise (the failed release is rejected, whatever became of the rollback)."""
    reason = f"{gate.subject} {gate.reason}"
    ctx.progress(f"gate failed: {gate}")
    slot = Slot(env, app.name)
    target = ctx.workspace.ledger(slot).last_runnable(excluding=failed.id)
    if target is None:
        ctx.workspace.record_outcome(env, failed, Outcome.REJECTED, reason)
        return GateFailed(
            f"{env.name}: {failed.id} failed its gate ({gate}); no earlier healthy release to roll "
            "back to",
            gate,
        )
    try:
        roll_back(ctx, env, Move(app, target, failed, Outcome.REJECTED), reason)
    except GateFailed as exc:  # the rollback failed its own gate: that is the news
        return exc
    return GateFailed(
        f"{env.name}: {failed.id} failed its gate ({gate}); rolled back to {target.release.id}",
        gate,
    )


def after_failed_unit(
    ctx: Context,
    env: Environment,
    promoted: list[tuple[App, Release]],
    gates: dict[str, GateResult | None],
) -> GateFailed:
    """A unit promoted together failed: every app in it goes back to its previous release in one
    rollback commit; the failed apps are rejected, the others rolled back. The GateFailed saying
    how it went, for the caller to raise."""
    failed = {name: g for name, g in gates.items() if g is not None and not g.passed}
    first, gate = next(iter(failed.items()))
    reason = f"{first}: {gate.subject} {gate.reason}" + (
        f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    )
    ctx.progress(f"gate failed in the unit: {first}: {gate}")
    moves, stranded = [], []
    for app, rel in promoted:
        slot = Slot(env, app.name)
        outcome = Outcome.REJECTED if app.name in failed else Outcome.ROLLED_BACK
        target = ctx.workspace.ledger(slot).last_runnable(excluding=rel.id)
        if target is None:
            ctx.workspace.record_outcome(env, rel, outcome, reason)
            stranded.append(rel.ref)
        else:
            moves.append(Move(app, target, rel, outcome))
    if moves:
        try:
            roll_back_many(ctx, env, moves, f"unit rolled back: {reason}")
        except GateFailed as exc:  # the rollback failed its own gate: that is the news
            return exc
    back = ", ".join(m.arrow for m in moves) or "nothing"
    left = f"; no earlier release of {', '.join(stranded)} to return to" if stranded else ""
    return GateFailed(
        f"{env.name}: {first} failed its gate ({gate}); the unit went back: {back}{left}", gate
    )


def manual(ctx: Context, app: App, env: Environment, to: str | None, reason: str) -> RollbackResult:
    slot = Slot(env, app.name)
    current = ctx.workspace.current_release(slot)
    if to and current and current.id == to:
        # Already there (the same rollback run again, after a crash or by a retried job): make
        # sure the cluster runs it, record nothing.
        ctx.progress(f"{slot.label} is already on {to}; syncing so the cluster runs it")
        result = sync_environment(ctx, env)
        gate = None if ctx.rehearsal else gate_synced(ctx, slot, result, current.id)
        return RollbackResult(current, None, gate, result, None, already=True)
    target = choose_target(ctx.workspace.ledger(slot), current, to)
    return roll_back(ctx, env, Move(app, target, current, Outcome.ROLLED_BACK), reason)


def owner(
    ctx: Context, env: Environment, app_name: str | None, to: str | None
) -> tuple[App, str | None]:
    """The app a rollback moves (named, the owner of `to` given as `APP@ID`, or ENV's only app)
    and the id it returns to; refuses another app's release."""
    owner, _, rid = (to or "").rpartition("@")
    if owner and app_name and owner != app_name:
        raise PromotionError(
            f"release {to} belongs to {owner}, not {app_name}: an app only rolls back to its own "
            "releases"
        )
    app_name = app_name or owner or None
    if app_name is None:
        released = [n for n in ctx.workspace.apps_in(env) if n in ctx.config.apps]
        if len(released) > 1:
            raise PromotionError(
                f"{env.name} holds several apps ({', '.join(released)}): name one "
                f"(ship rollback {env.name} APP), or roll back all with --all"
            )
        app_name = released[0] if released else None
    app = ctx.config.app(app_name)
    if rid and ctx.workspace.ledger(Slot(env, app.name)).find(rid) is None:
        others = [
            n
            for n in ctx.workspace.ledger_apps(env)
            if ctx.workspace.ledger(Slot(env, n)).find(rid)
        ]
        if others:
            raise PromotionError(
                f"release {rid} is {others[0]}'s, not {app.name}'s: an app only rolls back to its "
                "own releases"
            )
    return app, rid or None


def manual_all(
    ctx: Context, env: Environment, reason: str, app_name: str | None = None, to: str | None = None
) -> list[RollbackResult]:
    """Every app of ENV back on its previous healthy release, in one commit; apps with none stay.
    An app or a release named too is refused: --all names neither."""
    if app_name or to:
        raise ConfigError(
            "--all rolls every app back to its previous healthy release; it takes no APP or --to"
        )
    moves = []
    for name in ctx.workspace.apps_in(env):
        if name not in ctx.config.apps:
            continue
        slot = Slot(env, name)
        current = ctx.workspace.current_release(slot)
        entry = ctx.workspace.ledger(slot).last_runnable(excluding=current.id if current else None)
        if entry is None:
            ctx.progress(
                f"{slot.label}: no earlier healthy release; "
                f"it stays on {current.id if current else '-'}"
            )
            continue
        moves.append(Move(ctx.config.app(name), entry, current, Outcome.ROLLED_BACK))
    if not moves:
        raise PromotionError(
            f"no app in {env.name} has an earlier healthy "
            "release to roll back to (see ship history)"
        )
    return roll_back_many(ctx, env, moves, reason)
