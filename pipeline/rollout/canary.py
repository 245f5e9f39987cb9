"""A canary promotion: each release runs beside its app's stable release, step by step, analysed.

    per step: (first: the canaries warm up at weight 0, handover.py) commit every app's canary
              at its weight ─► sync ─► gate the canaries while they bake, each with its HTTP
              and Prometheus analysis, side by side ─► next step
    all passed: the stables move to the releases (gated), routing back to them and a drain
              (handover.py), the canaries go, one commit
    any failure: abort.py (weight 0, canaries removed, stables untouched, releases rejected)

Several apps promoted as one unit are judged together: one app's failed canary aborts all.

`--hold` stops after the analysis for a person to decide (`--resume` or `ship abort`). Every
step is a commit, so an interrupted canary resumes or aborts from git alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum

from pipeline import names
from pipeline.config import App, CanaryPolicy, CanaryStep, Environment, Slot
from pipeline.context import Context
from pipeline.errors import GateFailed
from pipeline.gitops import canary_overlay, configmaps, overlay
from pipeline.gitops.canary_overlay import CanaryState, Phase
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.gitops.records import Release
from pipeline.kube.lock import EnvironmentLock, check_held
from pipeline.policy.guard import Clearance
from pipeline.rollout import abort as aborting
from pipeline.rollout import gating, handover, rollback
from pipeline.rollout.gate import GateResult
from pipeline.rollout.promotion import steps_text
from pipeline.rollout.sync import ensure_namespace, sync_environment
from pipeline.state.traffic import live_weights, weights_text


class CanaryOutcome(str, Enum):
    PROMOTED = "promoted"
    HELD = "held"


@dataclass
class CanaryResult:
    """What a canary promotion did: promoted, or held for a decision (an abort raises)."""

    releases: list[Release]
    source: str
    outcome: CanaryOutcome = CanaryOutcome.PROMOTED
    steps: list[dict] = field(default_factory=list)  # per step: weight, live weights, gates by app
    commits: list[Commit] = field(default_factory=list)
    gate: GateResult | None = None  # the stable's gate after the canary passed (the first app's)
    # what it passed (and overrode) to come in
    clearance: Clearance = field(default_factory=Clearance)

    @property
    def release(self) -> Release:
        return self.releases[0]

    def to_json(self) -> dict:
        return {
            "release": self.release.record(),
            "releases": [r.record() for r in self.releases],
            "outcome": self.outcome.value,
            "steps": self.steps,
            "commits": [c.sha for c in self.commits],
            "gate": self.gate.to_json() if self.gate else None,
            "override": self.clearance.note or None,
        }

    def text(self) -> str:
        env, refs = self.release.environment, ", ".join(r.ref for r in self.releases)
        lines = [f"commit {c.short} {c.subject}" for c in self.commits]
        if self.outcome is CanaryOutcome.HELD:
            verb = "is" if len(self.releases) == 1 else "are"
            lines.append(
                f"{refs} {verb} held as a canary in {env} after the analysis passed; "
                f"ship promote {self.source} {env} --resume, or ship abort {env}"
            )
        else:
            images = "; ".join(f"{r.ref}: {r.image}" for r in self.releases)
            lines.append(
                f"promoted {refs} to {env} after the canary passed: {images}"
                if len(self.releases) > 1
                else f"promoted {self.release.ref} to {env} after "
                f"its canary passed: {self.release.image}"
            )
        return "\n".join(lines)


def start_state(
    ctx: Context,
    source: Environment,
    target: Environment,
    rel: Release,
    steps: tuple[CanaryStep, ...],
) -> CanaryState:
    app = ctx.config.app(rel.app)
    config = configmaps.config_name_for(
        app, rel.id, rel.config_data, ctx.workspace.slot_files(Slot(target, app.name))
    )
    now = ctx.clock.iso()
    return CanaryState(replace(rel, config=config), source.name, steps, 0, Phase.RUNNING, now, now)


def resumed_state(ctx: Context, target: Environment, state: CanaryState) -> CanaryState:
    """A canary state read back from git, with its config values from the ledger."""
    entry = ctx.workspace.ledger(Slot(target, state.release.app)).find(state.release.id)
    return replace(
        state,
        release=replace(state.release, config_data=entry.release.config_data if entry else {}),
    )


def in_progress(ctx: Context, target: Environment) -> list[CanaryState]:
    """The canaries in TO's overlay, by app."""
    return [
        s
        for app in ctx.workspace.apps_in(target)
        if (s := ctx.workspace.canary_state(Slot(target, app)))
    ]


def run_canary(
    ctx: Context,
    target: Environment,
    states: list[CanaryState],
    *,
    hold: bool = False,
    clearance: Clearance = Clearance(),
) -> CanaryResult:
    """Run the canaries from their step on; promote when every step passed, or hold, or abort.
    `clearance`: what the promotion passed, recorded in each commit (and an override in the
    ledger)."""
    cluster = ctx.cluster(target)
    ensure_namespace(cluster, target)
    with EnvironmentLock(cluster, target.name, target.namespace, ctx.lock, ctx.progress):
        return _run(ctx, target, states, hold=hold, clearance=clearance)


def named(releases: list[Release]) -> str:
    """A release by its id; several (a unit) by APP@ID."""
    return releases[0].id if len(releases) == 1 else ", ".join(r.ref for r in releases)


def _apps(ctx: Context, states: list[CanaryState]) -> list[App]:
    return [ctx.config.app(s.release.app) for s in states]


def _run(
    ctx: Context,
    target: Environment,
    states: list[CanaryState],
    *,
    hold: bool,
    clearance: Clearance,
) -> CanaryResult:
    policy = target.canary or CanaryPolicy()
    result = CanaryResult([s.release for s in states], states[0].source, clearance=clearance)
    first = states[0]
    for s in states:
        stable = ctx.workspace.current_release(Slot(target, s.release.app))
        ctx.progress(
            f"canary of {s.release.ref} in {target.name} "
            f"beside stable {stable.id if stable else '-'}: "
            f"steps {steps_text(s.steps)}, router {policy.router}"
        )
    if first.status is Phase.HELD and hold:
        # Asked to hold again (a retried job, a re-run after a crash): only --resume or abort
        # decide.
        ctx.progress(
            f"{', '.join(s.release.id for s in states)} is already held at {first.weight}% in "
            f"{target.name}; nothing to do"
        )
        result.outcome = CanaryOutcome.HELD
        return result
    if first.status is Phase.HELD:
        ctx.progress(f"resuming {', '.join(s.describe() for s in states)}")
        return _finish(ctx, target, states, result)
    for i in range(first.step, len(first.steps)):
        states = [
            replace(s, step=i, status=Phase.RUNNING, updated_at=ctx.clock.iso()) for s in states
        ]
        gates = _step(ctx, target, states, policy, result)
        failed = [(s, g) for s, g in zip(states, gates, strict=True) if not g.passed]
        if failed:
            s, gate = failed[0]
            reason = f"canary {s.weight}% failed: {gate.subject} {gate.reason}: {gate.message}"
            stables = [ctx.workspace.current_release(Slot(target, x.release.app)) for x in states]
            aborting.abort(ctx, target, reason)
            raise GateFailed(
                f"{target.name}: {reason}; aborted: weight 0, canary removed, stable "
                f"{named([r for r in stables if r]) or '-'} untouched, "
                f"{named([x.release for x in states])} rejected",
                gate,
            )
        ctx.progress(f"step {i + 1}/{len(first.steps)} passed: " + "; ".join(map(str, gates)))
    if hold:
        return _hold(ctx, target, states, result)
    return _finish(ctx, target, states, result)


def _step_plan(ctx: Context, app: App, slot: Slot, state: CanaryState, result: CanaryResult):
    rel = state.release
    base_objects, base_rel = ctx.workspace.base_of(app, slot, rel)
    base_files = ctx.workspace.base_files(app, slot, rel)

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str] | None:
        now = canary_overlay.read_state(current, slot)
        if now is not None and replace(now, updated_at="", release=rel) == replace(
            state, updated_at=""
        ):
            return None  # a re-run of a step already in git (after a crash): nothing new to record
        files = canary_overlay.plan_canary(
            current, app, slot, state, overlay.AppBase(base_objects, base_rel, base_files)
        )
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(slot.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(
            rel,
            Outcome.CANARY,
            f"canary {state.weight}%",
            ctx.clock.iso(),
            result.clearance.note or None,
        ).dumps()
        return files, ""

    return plan


def _message(action: str, title: str, states: list[CanaryState], result: CanaryResult):
    rel = states[0].release
    fields = (
        rel.trailers()
        if len(states) == 1
        else {"Apps": ", ".join(s.release.ref for s in states), "Environment": rel.environment}
    )
    return lambda: names.commit_message(title, action, {**fields, **result.clearance.trailers()})


def _refs(states: list[CanaryState]) -> str:
    return ", ".join(s.release.ref for s in states)


def _step(
    ctx: Context,
    target: Environment,
    states: list[CanaryState],
    policy: CanaryPolicy,
    result: CanaryResult,
) -> list[GateResult]:
    """Commit, sync and analyse one step of every app's canary; each app's gate verdict."""
    first = states[0]
    title = (
        f"canary({target.name}): {_refs(states)} at {first.weight}% "
        f"(step {first.step + 1}/{len(first.steps)}, from {first.source})"
    )
    apps = _apps(ctx, states)
    plans = [
        (Slot(target, a.name), _step_plan(ctx, a, Slot(target, a.name), s, result))
        for a, s in zip(apps, states, strict=True)
    ]
    check_held(target.namespace)  # a run that lost its lock records nothing more
    warm = handover.warm_up_step(
        ctx, target, [(a, s, p) for a, s, (_, p) in zip(apps, states, plans, strict=True)]
    )
    if warm is not None and not all(g.passed for g in warm):
        return warm
    commit = ctx.workspace.publish_many(
        target, apps, plans, _message("canary", title, states, result)
    )
    result.commits += [commit] if commit else []
    synced = sync_environment(ctx, target)
    # a pre hook failed (kube/hooks.py): nothing of this step was applied
    if synced.hook is not None:
        return [synced.hook[1]] * len(states)
    weights = live_weights(ctx.cluster(target), target)
    ctx.progress(
        f"step {first.step + 1}/{len(first.steps)}: canary at {first.weight}%; "
        f"live weights: {weights_text(weights)}"
    )
    if len(states) == 1:
        gates = [gating.canary_verdict(ctx, apps[0], target, states[0], policy)]
    else:  # side by side: the unit's bake takes as long as one app's
        with ThreadPoolExecutor(max_workers=len(states)) as pool:
            gates = list(
                pool.map(
                    lambda pair: gating.canary_verdict(ctx, pair[0], target, pair[1], policy),
                    zip(apps, states, strict=True),
                )
            )
    result.steps.append(
        {
            "weight": first.weight,
            "live_weights": weights,
            "gate": gates[0].to_json(),
            "gates": {a.name: g.to_json() for a, g in zip(apps, gates, strict=True)},
        }
    )
    return gates


def _hold(
    ctx: Context, target: Environment, states: list[CanaryState], result: CanaryResult
) -> CanaryResult:
    states = [replace(s, status=Phase.HELD, updated_at=ctx.clock.iso()) for s in states]
    title = (
        f"canary({target.name}): {_refs(states)} held at {states[0].weight}% after analysis passed"
    )
    plans = [(Slot(target, s.release.app), _state_file(s)) for s in states]
    commit = ctx.workspace.publish_many(
        target, _apps(ctx, states), plans, _message("canary", title, states, result)
    )
    result.commits += [commit] if commit else []
    ctx.progress(
        f"held: decide with `ship promote {states[0].source} {target.name} --resume` or "
        f"`ship abort {target.name}`"
    )
    result.outcome = CanaryOutcome.HELD
    return result


def _state_file(state: CanaryState):
    return lambda _current: (overlay.OverlayFiles({overlay.CANARY_STATE_FILE: state.dumps()}), "")


def _finish(
    ctx: Context, env: Environment, states: list[CanaryState], result: CanaryResult
) -> CanaryResult:
    """Every step passed: the stables move to the releases (gated), routing returns to 100% stable,
    the canaries are removed, and the promotion is committed."""
    apps = _apps(ctx, states)
    pairs = [(a, s.release) for a, s in zip(apps, states, strict=True)]
    ctx.progress(f"canary passed; moving stable {env.name} to {_refs(states)}")
    for app, rel in pairs:
        slot = Slot(env, app.name)
        base_objects, base_rel = ctx.workspace.base_of(app, slot, rel)
        base = overlay.AppBase(base_objects, base_rel)
        ctx.workspace.write_slot(
            slot, overlay.plan_release(ctx.workspace.slot_files(slot), app, slot, rel, base)
        )
    synced = sync_environment(ctx, env)
    gates = gating.verdicts(ctx, env, synced, pairs)
    result.gate = gates[apps[0].name]
    if failed := gating.failures(gates):
        for app, _rel in pairs:
            slot = Slot(env, app.name)
            base_objects, _ = ctx.workspace.base_of(app, slot)
            removed = canary_overlay.plan_removed(
                ctx.workspace.slot_files(slot), app, slot, base_objects, None
            )
            ctx.workspace.write_slot(slot, removed)
        sync_environment(ctx, env)
        if len(pairs) == 1:
            raise rollback.after_failed_gate(ctx, apps[0], env, pairs[0][1], failed[apps[0].name])
        raise rollback.after_failed_unit(ctx, env, pairs, gates)
    # before the canaries go
    handover.route_to_stable(
        ctx,
        env,
        [
            (a, s, ctx.workspace.base_of(a, Slot(env, a.name), s.release)[0])
            for a, s in zip(apps, states, strict=True)
        ],
    )
    title = (
        f"promote({env.name}): {_refs(states)} after canary {steps_text(states[0].steps)} passed"
    )
    plans = [
        (Slot(env, app.name), _promoted_plan(ctx, app, Slot(env, app.name), s))
        for app, s in zip(apps, states, strict=True)
    ]
    check_held(env.namespace)
    commit = ctx.workspace.publish_many(
        env, apps, plans, _message("promote", title, states, result)
    )
    result.commits += [commit] if commit else []
    sync_environment(ctx, env)
    ctx.progress(f"{title}; live weights: {weights_text(live_weights(ctx.cluster(env), env))}")
    return result


def _promoted_plan(ctx: Context, app: App, slot: Slot, state: CanaryState):
    rel = state.release
    base_objects, base_rel = ctx.workspace.base_of(app, slot, rel)

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str]:
        files = dict(
            overlay.plan_release(
                current, app, slot, rel, overlay.AppBase(base_objects, base_rel)
            ).files
        )
        files.update(
            canary_overlay.plan_removed(
                {**current, **files}, app, slot, base_objects, rel.config
            ).files
        )
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(slot.overlay / LEDGER_FILE))
        files[LEDGER_FILE] = ledger.record(
            rel, Outcome.HEALTHY, f"canary {steps_text(state.steps)} passed", ctx.clock.iso()
        ).dumps()
        return overlay.OverlayFiles(files), ""

    return plan
