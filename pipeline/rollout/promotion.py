"""`ship promote FROM TO`: move the release that is healthy in FROM to TO, never rebuilding.

TO gets FROM's pinned image digest and the same release id; its config is TO's own, as a new
versioned immutable ConfigMap. Then it is written, committed, pushed, synced and gated, and
rolled back automatically on failure, exactly as a release. Refused when FROM → TO is not an
edge of ship.yaml, when the release was rejected, or when FROM is not healthy right now.

With a canary (TO's `canary:` policy, or `--canary 10`), the release first runs beside TO's
stable release as `<app>-canary` taking a share of traffic, step by step, each step analysed
while it bakes; then the stable moves to it. Any failure aborts: weight 0, canary removed,
stable untouched, release rejected. `--hold` stops after the analysis for a person to decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from pipeline.gitops import canary_overlay as canary
from pipeline.rollout import gates
from pipeline.kube import health
from pipeline.gitops import overlay
from pipeline.rollout import rollback as rollback_mod
from pipeline.gitops import routing
from pipeline.rollout import sync as sync_mod
from pipeline.rollout.analysis import Analysis
from pipeline.config import CanaryPolicy, CanaryStep, Environment, ShipConfig
from pipeline.errors import GateFailed, PromotionError
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.kube.lock import EnvironmentLock, LockOptions
from pipeline.rollout.release import (base_of, load_config_data, now_iso, publish_overlay, read_ledger, read_overlay,
                              write_overlay)
from pipeline.rollout.sync import connect, ensure_namespace

Progress = Callable[[str], None]


def check_edge(cfg: ShipConfig, source: Environment, target: Environment) -> None:
    if target.promotes_from != source.name:
        allowed = [e.name for e in cfg.environments.values() if e.promotes_from == source.name]
        raise PromotionError(f"{source.name} → {target.name} is not a promotion edge in ship.yaml "
                             f"({source.name} promotes to: {', '.join(allowed) or 'nothing'})")


def healthy_release(cfg: ShipConfig, source: Environment) -> overlay.Release:
    """FROM's current release, if its ledger says healthy and its Deployments are healthy live."""
    current = overlay.current_release(read_overlay(cfg.root, source), source)
    if current is None:
        raise PromotionError(f"nothing is released to {source.name} yet")
    entry = read_ledger(cfg.root, source).find(current.id)
    if entry is None or entry.outcome not in Outcome.RUNNABLE:
        outcome = entry.outcome if entry else "not in the ledger"
        raise PromotionError(f"{current.id} in {source.name} is {outcome}"
                             + (f" ({entry.reason})" if entry and entry.reason else "") + "; only a healthy release is promoted")
    cluster = connect(source)
    try:
        live = cluster.list("apps/v1", "Deployment", source.namespace, selector=f"ship.dev/environment={source.name}")
    finally:
        cluster.close()
    mine = [d for d in live if (d["metadata"].get("annotations") or {}).get("ship.dev/release") == current.id]
    if not mine:
        raise PromotionError(f"{current.id} is not running in {source.name} (namespace {source.namespace}); sync it first")
    for dep in mine:
        h = health.assess_deployment(dep)
        if not h.ok:
            raise PromotionError(f"{source.name} is not healthy: {h.subject} {h.code.value}: {h.message}")
    return current


def promoted_release(cfg: ShipConfig, source: Environment, target: Environment, rel: overlay.Release,
                     author: str) -> overlay.Release:
    """The release as TO runs it: same id, commit and image; TO's own config."""
    ledger = read_ledger(cfg.root, target)
    if ledger.is_rejected(rel.id):
        raise PromotionError(f"{rel.id} was rejected in {target.name}; it is not promoted again")
    app = cfg.app(rel.app)
    data = load_config_data(cfg.root, app, target)
    return replace(rel, environment=target.name, config="", config_data=data, promoted_from=source.name,
                   created_at=now_iso(), created_by=author)


# ── canary ────────────────────────────────────────────────────────────────────────────────────

@dataclass
class CanaryResult:
    """What a canary promotion did: promoted, held for a decision, or aborted (raised)."""

    release: overlay.Release
    outcome: str  # promoted | held
    steps: list[dict] = field(default_factory=list)  # per step: weight, live weights, gate
    commits: list[Commit] = field(default_factory=list)
    gate: gates.GateResult | None = None  # the stable's gate after the canary passed


def canary_steps(policy: CanaryPolicy, weight: int | None) -> tuple[CanaryStep, ...]:
    """The policy's steps, or one step at `weight` (`--canary 10`) baking as long as the first step."""
    if weight is None:
        return policy.steps
    if not 0 < weight <= 100:
        raise PromotionError(f"--canary {weight}: expected a percentage between 1 and 100")
    return (CanaryStep(weight, policy.steps[0].bake if policy.steps else 30.0),)


def steps_text(steps: tuple[CanaryStep, ...]) -> str:
    return " → ".join(f"{s.weight}%" for s in steps)


def read_canary(cfg: ShipConfig, env: Environment) -> canary.CanaryState | None:
    return canary.read_state(read_overlay(cfg.root, env), env)


def live_weights(cluster, env: Environment) -> dict[str, int]:
    """Traffic weights by backend as the API server holds them; for router replicas, pod shares."""
    policy = env.canary or CanaryPolicy()
    selector = f"ship.dev/environment={env.name}"
    if policy.router == "gateway":
        return routing.live_weights(cluster.list("gateway.networking.k8s.io/v1", "HTTPRoute", env.namespace, selector=selector))
    if policy.router == "nginx":
        return routing.live_weights(cluster.list("networking.k8s.io/v1", "Ingress", env.namespace, selector=selector))
    deps = cluster.list("apps/v1", "Deployment", env.namespace, selector=selector)
    pods = {d["metadata"]["name"]: int(d["spec"].get("replicas", 1)) for d in deps}
    total = sum(pods.values()) or 1
    return {name: round(100 * n / total) for name, n in pods.items()}


def _weights_text(weights: dict[str, int]) -> str:
    return ", ".join(f"{name} {w}%" for name, w in sorted(weights.items())) or "no routes"


def run_canary(cfg: ShipConfig, source: Environment, target: Environment, rel: overlay.Release,
               steps: tuple[CanaryStep, ...], hold: bool, progress: Progress,
               resume: canary.CanaryState | None = None) -> CanaryResult:
    """Deploy `rel` as a canary beside TO's stable release, step by step, analysing each step;
    promote it when every step passed (or hold for a decision); abort on the first failure."""
    app = cfg.app(rel.app)
    cluster = connect(target)
    try:
        ensure_namespace(cluster, target)
        with EnvironmentLock(cluster, target.name, target.namespace, LockOptions(), progress):
            return _run_canary(cfg, app, source, target, rel, steps, hold, progress, resume, cluster)
    finally:
        cluster.close()


def _run_canary(cfg, app, source, target, rel, steps, hold, progress, resume, cluster) -> CanaryResult:
    policy = target.canary or CanaryPolicy()
    base_objects, base_rel = base_of(cfg, app, target)
    if resume is not None:
        entry = read_ledger(cfg.root, target).find(resume.release.id)
        state = replace(resume, release=replace(resume.release, config_data=entry.release.config_data if entry else {}))
    else:
        config = overlay.config_name_for(app, rel.id, rel.config_data, read_overlay(cfg.root, target))
        now = now_iso()
        state = canary.CanaryState(replace(rel, config=config), source.name, steps, 0, canary.RUNNING, now, now)
    rel = state.release
    result = CanaryResult(rel, "promoted")
    stable = overlay.current_release(read_overlay(cfg.root, target), target)
    progress(f"canary of {rel.id} in {target.name} beside stable {stable.id if stable else '-'}: "
             f"steps {steps_text(state.steps)}, router {policy.router}")
    if state.status == canary.HELD:
        progress(f"resuming {state.describe()}")
    else:
        for i in range(state.step, len(state.steps)):
            state = replace(state, step=i, status=canary.RUNNING, updated_at=now_iso())
            step = state.steps[i]
            commit = _publish_step(cfg, app, target, state, base_objects, base_rel)
            result.commits += [commit] if commit else []
            sync_mod.sync(cfg, target, progress=progress, cluster=cluster)
            weights = live_weights(cluster, target)
            progress(f"step {i + 1}/{len(state.steps)}: canary at {step.weight}%; live weights: {_weights_text(weights)}")
            gate = _analyse(cluster, app, target, state, base_objects, policy, progress)
            result.steps.append({"weight": step.weight, "live_weights": weights, "gate": gate.to_json()})
            if not gate.passed:
                reason = f"canary {step.weight}% failed: {gate.subject} {gate.reason}: {gate.message}"
                abort(cfg, target, reason, progress, cluster=cluster)
                raise GateFailed(f"{target.name}: {reason}; aborted: weight 0, canary removed, stable "
                                 f"{stable.id if stable else '-'} untouched, {rel.id} rejected", gate)
            progress(f"step {i + 1}/{len(state.steps)} passed: {gate}")
        if hold:
            state = replace(state, status=canary.HELD, updated_at=now_iso())
            title = f"canary({target.name}): {app.name} {rel.id} held at {state.weight}% after analysis passed"
            commit = publish_overlay(cfg, app, target, lambda cur: (overlay.OverlayFiles(
                {overlay.CANARY_STATE_FILE: state.dumps()}), _message(title, "canary", rel)))
            result.commits += [commit] if commit else []
            progress(f"held: decide with `ship promote {source.name} {target.name} --resume` or `ship abort {target.name}`")
            result.outcome = "held"
            return result
    return _finish(cfg, app, target, state, base_objects, base_rel, result, progress, cluster)


def _message(title: str, action: str, rel: overlay.Release) -> str:
    return (f"{title}\n\nShip-Action: {action}\nShip-Release: {rel.id}\nShip-App: {rel.app}\n"
            f"Ship-Environment: {rel.environment}\nShip-Image: {rel.image}\nShip-Config: {rel.config}\n")


def _publish_step(cfg, app, env, state: canary.CanaryState, base_objects, base_rel):
    rel = state.release
    title = (f"canary({env.name}): {app.name} {rel.id} at {state.weight}% "
             f"(step {state.step + 1}/{len(state.steps)}, from {state.source})")

    def plan(current):
        now = canary.read_state(current, env)
        if now is not None and replace(now, updated_at="") == replace(state, updated_at="", release=now.release) \
                and now.release.id == rel.id:
            return None  # a re-run of a step already in git (after a crash): nothing new to record
        files = canary.plan_canary(current, app, env, state, base_objects, base_rel)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(rel, Outcome.CANARY, f"canary {state.weight}%", now_iso()).dumps()
        return files, _message(title, "canary", rel)

    return publish_overlay(cfg, app, env, plan)


def _analyse(cluster, app, env, state, base_objects, policy, progress) -> gates.GateResult:
    """The canary's rollout and pod gates, with HTTP and Prometheus analysis while it bakes."""
    step = state.steps[state.step]
    names = [routing.canary_name(w["metadata"]["name"]) for w in canary._workloads(app, base_objects)]
    service = routing.service_for(base_objects, canary._workloads(app, base_objects)[0])
    context = {"namespace": env.namespace, "app": app.name,
               "service": routing.canary_name(service[0]) if service else routing.canary_name(app.name)}
    checks = Analysis(policy.http, policy.prometheus, context, progress)
    options = replace(env.gates, bake=step.bake)
    progress(f"analysing {', '.join(names)} for {step.bake:.0f}s every {policy.interval:.0f}s: rollout, pods"
             + (f", {len(policy.http)} HTTP check(s)" if policy.http else "")
             + (f", {len(policy.prometheus)} Prometheus quer(y/ies)" if policy.prometheus else ""))
    try:
        return gates.wait_healthy(cluster, env.namespace, names, options, state.release.id, progress,
                                  analysis=checks if checks else None, interval=policy.interval)
    finally:
        checks.close()


def _finish(cfg, app, env, state, base_objects, base_rel, result: CanaryResult, progress, cluster) -> CanaryResult:
    """Every step passed: the stable moves to the release (gated), routing returns to 100% stable,
    the canary is removed, and the promotion is committed."""
    rel = state.release
    progress(f"canary passed; moving stable {env.name} to {rel.id}")
    current = read_overlay(cfg.root, env)
    write_overlay(cfg.root, env, overlay.plan_release(current, app, env, rel, base_objects, base_rel))
    synced = sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
    gate = rollback_mod.gate_environment(cfg, env, synced, rel.id, progress)
    result.gate = gate
    if gate is not None and not gate.passed:
        write_overlay(cfg.root, env, canary.plan_removed(read_overlay(cfg.root, env), app, env, base_objects, None))
        sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
        rollback_mod.after_failed_gate(cfg, app, env, rel, gate, progress)  # raises GateFailed
    title = f"promote({env.name}): {app.name} {rel.id} after canary {steps_text(state.steps)} passed"

    def plan(current):
        files = dict(overlay.plan_release(current, app, env, rel, base_objects, base_rel).files)
        files.update(canary.plan_removed({**current, **files}, app, env, base_objects, rel.config).files)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files[LEDGER_FILE] = ledger.record(rel, Outcome.HEALTHY, f"canary {steps_text(state.steps)} passed",
                                           now_iso()).dumps()
        return overlay.OverlayFiles(files), _message(title, "promote", rel)

    commit = publish_overlay(cfg, app, env, plan)
    result.commits += [commit] if commit else []
    sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
    progress(f"{title}; live weights: {_weights_text(live_weights(cluster, env))}")
    return result


@dataclass
class AbortResult:
    release: str | None
    reason: str
    commit: Commit | None


def abort(cfg: ShipConfig, env: Environment, reason: str, progress: Progress = lambda _m: None,
          cluster=None) -> AbortResult:
    """Take a canary down: weight to 0 first, then its objects removed, the release marked rejected
    and an abort record committed. The stable release is never touched. Also cleans up a canary
    left live by a crash after git no longer had it."""
    own = cluster is None
    cluster = cluster or connect(env)
    try:
        with EnvironmentLock(cluster, env.name, env.namespace, LockOptions(), progress):
            return _abort(cfg, env, reason, progress, cluster)
    finally:
        if own:
            cluster.close()


def _abort(cfg, env, reason, progress, cluster) -> AbortResult:
    state = read_canary(cfg, env)
    if state is None:
        leftovers = cluster.list("apps/v1", "Deployment", env.namespace, selector=f"{routing.TRACK}=canary")
        if not leftovers:
            raise PromotionError(f"no canary in {env.name}: nothing to abort")
        progress(f"no canary in git; removing {len(leftovers)} leftover canary Deployment(s) by syncing {env.name}")
        sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
        return AbortResult(None, reason, None)
    rel = state.release
    app = cfg.app(rel.app)
    base_objects, _ = base_of(cfg, app, env)
    progress(f"aborting {state.describe()} in {env.name}: {reason}")
    write_overlay(cfg.root, env, canary.plan_weight_zero(read_overlay(cfg.root, env), app, env, state, base_objects))
    sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
    progress(f"weight 0: live weights: {_weights_text(live_weights(cluster, env))}")
    stable = overlay.current_release(read_overlay(cfg.root, env), env)
    title = f"abort({env.name}): {app.name} {rel.id} canary at {state.weight}%: {reason}"

    def plan(current):
        files = canary.plan_removed(current, app, env, base_objects, stable.config if stable else None)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = ledger.record(rel, Outcome.REJECTED, reason, now_iso()).dumps()
        return files, _message(title, "abort", rel)

    commit = publish_overlay(cfg, app, env, plan)
    sync_mod.sync(cfg, env, progress=progress, cluster=cluster)
    progress(f"canary removed; {env.name} stays on {stable.id if stable else '-'}; {rel.id} rejected")
    return AbortResult(rel.id, reason, commit)
