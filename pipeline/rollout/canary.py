"""A canary promotion: the release runs beside TO's stable release, step by step, analysed.

    per step: commit the canary at its weight ─► sync ─► gate the canary while it bakes, with
              HTTP and Prometheus analysis ─► next step
    all passed: the stable moves to the release (gated), the canary is removed, one commit
    any failure: abort.py (weight 0, canary removed, stable untouched, release rejected)

`--hold` stops after the analysis for a person to decide (`--resume` or `ship abort`). Every
step is a commit, so an interrupted canary resumes or aborts from git alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from pipeline import names
from pipeline.config import App, CanaryPolicy, CanaryStep, Environment
from pipeline.context import Context
from pipeline.errors import GateFailed
from pipeline.gitops import canary_overlay, overlay, routing
from pipeline.gitops.canary_overlay import CanaryState, Phase
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.gitops.records import Release
from pipeline.kube.lock import EnvironmentLock, LockOptions, check_held
from pipeline.policy.guard import Clearance
from pipeline.rollout import abort as aborting
from pipeline.rollout import rollback
from pipeline.rollout.analysis import Analysis, fill, missing_services
from pipeline.rollout.gate import GateResult
from pipeline.rollout.promotion import steps_text
from pipeline.rollout.sync import ensure_namespace, sync_environment
from pipeline.rollout.traffic import live_weights, weights_text
from pipeline.rollout.watch import gate_synced, wait_healthy


class CanaryOutcome(str, Enum):
    PROMOTED = "promoted"
    HELD = "held"


@dataclass
class CanaryResult:
    """What a canary promotion did: promoted, or held for a decision (an abort raises)."""

    release: Release
    source: str
    outcome: CanaryOutcome = CanaryOutcome.PROMOTED
    steps: list[dict] = field(default_factory=list)  # per step: weight, live weights, gate
    commits: list[Commit] = field(default_factory=list)
    gate: GateResult | None = None  # the stable's gate after the canary passed
    clearance: Clearance = field(default_factory=Clearance)  # what it passed (and overrode) to come in

    def to_json(self) -> dict:
        return {"release": self.release.record(), "outcome": self.outcome.value, "steps": self.steps,
                "commits": [c.sha for c in self.commits], "gate": self.gate.to_json() if self.gate else None,
                "override": self.clearance.note or None}

    def text(self) -> str:
        rel, env = self.release, self.release.environment
        lines = [f"commit {c.short} {c.subject}" for c in self.commits]
        if self.outcome is CanaryOutcome.HELD:
            lines.append(f"{rel.app} {rel.id} is held as a canary in {env} after its analysis passed; "
                         f"ship promote {self.source} {env} --resume, or ship abort {env}")
        else:
            lines.append(f"promoted {rel.app} {rel.id} to {env} after its canary passed: {rel.image}")
        return "\n".join(lines)


def start_state(ctx: Context, source: Environment, target: Environment, rel: Release,
                steps: tuple[CanaryStep, ...]) -> CanaryState:
    app = ctx.config.app(rel.app)
    config = overlay.config_name_for(app, rel.id, rel.config_data, ctx.workspace.files(target))
    now = ctx.clock.iso()
    return CanaryState(replace(rel, config=config), source.name, steps, 0, Phase.RUNNING, now, now)


def resumed_state(ctx: Context, target: Environment, state: CanaryState) -> CanaryState:
    """A canary state read back from git, with its config values from the ledger."""
    entry = ctx.workspace.ledger(target).find(state.release.id)
    return replace(state, release=replace(state.release, config_data=entry.release.config_data if entry else {}))


def run_canary(ctx: Context, target: Environment, state: CanaryState, hold: bool,
               clearance: Clearance = Clearance()) -> CanaryResult:
    """Run the canary from `state`'s step on; promote when every step passed, or hold, or abort.
    `clearance`: what the promotion passed, recorded in each commit (and an override in the ledger)."""
    cluster = ctx.cluster(target)
    ensure_namespace(cluster, target)
    with EnvironmentLock(cluster, target.name, target.namespace, LockOptions(), ctx.progress):
        return _run(ctx, ctx.config.app(state.release.app), target, state, hold, clearance)


def _run(ctx: Context, app: App, target: Environment, state: CanaryState, hold: bool,
         clearance: Clearance) -> CanaryResult:
    policy = target.canary or CanaryPolicy()
    result = CanaryResult(state.release, state.source, clearance=clearance)
    stable = ctx.workspace.current_release(target)
    ctx.progress(f"canary of {state.release.id} in {target.name} beside stable {stable.id if stable else '-'}: "
                 f"steps {steps_text(state.steps)}, router {policy.router}")
    if state.status is Phase.HELD and hold:
        # Asked to hold again (a retried job, a re-run after a crash): only --resume or abort decide.
        ctx.progress(f"{state.release.id} is already held at {state.weight}% in {target.name}; nothing to do")
        result.outcome = CanaryOutcome.HELD
        return result
    if state.status is Phase.HELD:
        ctx.progress(f"resuming {state.describe()}")
        return _finish(ctx, app, target, state, result)
    for i in range(state.step, len(state.steps)):
        state = replace(state, step=i, status=Phase.RUNNING, updated_at=ctx.clock.iso())
        gate = _step(ctx, app, target, state, policy, result)
        if not gate.passed:
            reason = f"canary {state.weight}% failed: {gate.subject} {gate.reason}: {gate.message}"
            aborting.abort(ctx, target, reason)
            raise GateFailed(f"{target.name}: {reason}; aborted: weight 0, canary removed, stable "
                             f"{stable.id if stable else '-'} untouched, {state.release.id} rejected", gate)
        ctx.progress(f"step {i + 1}/{len(state.steps)} passed: {gate}")
    if hold:
        return _hold(ctx, app, target, state, result)
    return _finish(ctx, app, target, state, result)


def _step(ctx: Context, app: App, target: Environment, state: CanaryState, policy: CanaryPolicy,
          result: CanaryResult) -> GateResult:
    """Commit, sync and analyse one step; the gate's verdict."""
    rel = state.release
    title = (f"canary({target.name}): {app.name} {rel.id} at {state.weight}% "
             f"(step {state.step + 1}/{len(state.steps)}, from {state.source})")
    base_objects, base_rel = ctx.workspace.base_of(app, target)

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str] | None:
        now = canary_overlay.read_state(current, target)
        if now is not None and replace(now, updated_at="", release=rel) == replace(state, updated_at=""):
            return None  # a re-run of a step already in git (after a crash): nothing new to record
        files = canary_overlay.plan_canary(current, app, target, state, base_objects, base_rel)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(target.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(rel, Outcome.CANARY, f"canary {state.weight}%", ctx.clock.iso(),
                                                 result.clearance.note or None).dumps()
        return files, names.commit_message(title, "canary", {**rel.trailers(), **result.clearance.trailers()})

    check_held(target.namespace)  # a run that lost its lock records nothing more
    commit = ctx.workspace.publish(target, [app], plan)
    result.commits += [commit] if commit else []
    sync_environment(ctx, target)
    weights = live_weights(ctx.cluster(target), target)
    ctx.progress(f"step {state.step + 1}/{len(state.steps)}: canary at {state.weight}%; "
                 f"live weights: {weights_text(weights)}")
    gate = _analyse(ctx, app, target, state, base_objects, policy)
    result.steps.append({"weight": state.weight, "live_weights": weights, "gate": gate.to_json()})
    return gate


def _analyse(ctx: Context, app: App, env: Environment, state: CanaryState, base_objects: list[dict],
             policy: CanaryPolicy) -> GateResult:
    """The canary's rollout and pod gates, with HTTP and Prometheus analysis while it bakes."""
    step = state.steps[state.step]
    workloads = overlay.patched_workloads(app, base_objects)
    deployments = [names.canary_name(w["metadata"]["name"]) for w in workloads]
    service = routing.service_for(base_objects, workloads[0])
    stable_service = service[0] if service else app.name
    tracks = {track: {"namespace": env.namespace, "app": app.name, "track": track,
                      "service": names.canary_name(stable_service) if track == names.CANARY else stable_service}
              for track in (names.CANARY, names.STABLE)}
    checks = Analysis(policy.http, policy.prometheus, tracks, ctx.http(), ctx.cluster(env), ctx.progress)
    missing = missing_services(ctx.cluster(env), [fill(c.url, t) for c in policy.http for t in tracks.values()]
                               + [fill(q.url, tracks[names.CANARY]) for q in policy.prometheus])
    if missing:
        return GateResult(False, "analysis", missing, "NotFound", "an analysis check names a Service that does not exist",
                          0.0)
    ctx.progress(f"analysing {', '.join(deployments)} for {step.bake:.0f}s every {policy.interval:.0f}s: rollout, pods"
                 + (f", {len(policy.http)} HTTP check(s) against the stable" if policy.http else "")
                 + (f", {len(policy.prometheus)} Prometheus quer(y/ies)" if policy.prometheus else ""))
    return wait_healthy(ctx.cluster(env), env.namespace, deployments, replace(env.gates, bake=step.bake),
                        state.release.id, ctx.progress, ctx.clock, analysis=checks if checks else None,
                        interval=policy.interval)


def _hold(ctx: Context, app: App, target: Environment, state: CanaryState, result: CanaryResult) -> CanaryResult:
    state = replace(state, status=Phase.HELD, updated_at=ctx.clock.iso())
    rel = state.release
    title = f"canary({target.name}): {app.name} {rel.id} held at {state.weight}% after analysis passed"
    commit = ctx.workspace.publish(target, [app], lambda _current: (overlay.OverlayFiles(
        {overlay.CANARY_STATE_FILE: state.dumps()}), names.commit_message(title, "canary",
                                                                          {**rel.trailers(), **result.clearance.trailers()})))
    result.commits += [commit] if commit else []
    ctx.progress(f"held: decide with `ship promote {state.source} {target.name} --resume` or `ship abort {target.name}`")
    result.outcome = CanaryOutcome.HELD
    return result


def _finish(ctx: Context, app: App, env: Environment, state: CanaryState, result: CanaryResult) -> CanaryResult:
    """Every step passed: the stable moves to the release (gated), routing returns to 100% stable,
    the canary is removed, and the promotion is committed."""
    rel = state.release
    ctx.progress(f"canary passed; moving stable {env.name} to {rel.id}")
    base_objects, base_rel = ctx.workspace.base_of(app, env)
    ctx.workspace.write(env, overlay.plan_release(ctx.workspace.files(env), app, env, rel, base_objects, base_rel))
    result.gate = gate = gate_synced(ctx, env, sync_environment(ctx, env), rel.id)
    if gate is not None and not gate.passed:
        ctx.workspace.write(env, canary_overlay.plan_removed(ctx.workspace.files(env), app, env, base_objects, None))
        sync_environment(ctx, env)
        rollback.after_failed_gate(ctx, app, env, rel, gate)  # raises GateFailed
    title = f"promote({env.name}): {app.name} {rel.id} after canary {steps_text(state.steps)} passed"

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str]:
        files = dict(overlay.plan_release(current, app, env, rel, base_objects, base_rel).files)
        files.update(canary_overlay.plan_removed({**current, **files}, app, env, base_objects, rel.config).files)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files[LEDGER_FILE] = ledger.record(rel, Outcome.HEALTHY, f"canary {steps_text(state.steps)} passed",
                                           ctx.clock.iso()).dumps()
        return overlay.OverlayFiles(files), names.commit_message(title, "promote",
                                                                 {**rel.trailers(), **result.clearance.trailers()})

    check_held(env.namespace)
    commit = ctx.workspace.publish(env, [app], plan)
    result.commits += [commit] if commit else []
    sync_environment(ctx, env)
    ctx.progress(f"{title}; live weights: {weights_text(live_weights(ctx.cluster(env), env))}")
    return result
