"""What each CLI command does, end to end, composed from the pipeline's modules.

The CLI parses and prints; this module loads the configuration, wires the real adapters
(git, registry, build engine, cluster) and runs the steps in order.
"""

from __future__ import annotations

from typing import Callable

from pipeline import config
from pipeline.image import build as build_mod
from pipeline.gitops import overlay
from pipeline.rollout import release as release_mod
from pipeline.rollout import rollback as rollback_mod
from pipeline.rollout import promotion as promote_mod
from pipeline.rollout import sync as sync_mod
from pipeline.errors import PromotionError
from pipeline.gitops.ledger import Outcome
from pipeline.gitops.git import GitRepo
from pipeline.image.registry import Registry

Progress = Callable[[str], None]


def release(env_name: str, app_name: str | None, *, image: str | None = None, sync: bool = True, push: bool = True,
            allow_dirty: bool = False, allow_rejected: bool = False,
            progress: Progress = lambda _m: None) -> release_mod.ReleaseResult:
    cfg = config.load()
    env, app = cfg.env(env_name), cfg.app(app_name)
    repo = GitRepo(cfg.root)
    repo.require_clean(allow_dirty)
    if image:
        registry = Registry(cfg.registry)
        try:
            pinned = str(release_mod.check_image(registry, image))
        finally:
            registry.close()
    else:
        pinned = str(build_mod.build(cfg, app, allow_dirty=allow_dirty, progress=progress).image)
    rel = release_mod.new_release(cfg, app, env, pinned, repo.last_change(str(app.path)), repo.author())
    entry = release_mod.read_ledger(cfg.root, env).find(rel.id)
    if entry is not None and entry.outcome == Outcome.REJECTED and not allow_rejected:
        raise PromotionError(f"release {rel.id} was rejected in {env.name} ({entry.reason}); "
                             "pass --allow-rejected to release it again")
    result = release_mod.write_release(cfg, app, env, rel, push=push, progress=progress)
    if sync:
        result.sync = sync_mod.sync(cfg, env, progress=progress)
        result.gate = gate_and_record(cfg, app, env, result.sync, result.release, progress)
    return result


def promote(from_name: str, to_name: str, *, sync: bool = True, push: bool = True, canary: int | None = None,
            no_canary: bool = False, hold: bool = False, resume: bool = False,
            progress: Progress = lambda _m: None):
    """A plain promotion (ReleaseResult) or, when TO has a canary policy or `canary` is given and
    there is a stable release to run beside, a canary promotion (promote.CanaryResult)."""
    cfg = config.load()
    source, target = cfg.env(from_name), cfg.env(to_name)
    promote_mod.check_edge(cfg, source, target)
    repo = GitRepo(cfg.root)
    state = promote_mod.read_canary(cfg, target)
    if resume:
        if state is None:
            raise PromotionError(f"no canary in {target.name} to resume (see ship status {target.name})")
        return promote_mod.run_canary(cfg, source, target, state.release, state.steps, False, progress, resume=state)
    rel = promote_mod.healthy_release(cfg, source)
    if state is not None:
        if state.release.id != rel.id:
            raise PromotionError(f"{target.name} has {state.describe()} in progress; finish it with `ship promote "
                                 f"{state.source} {target.name} --resume` or remove it with `ship abort {target.name}`")
        progress(f"{state.describe()} is already in progress in {target.name}; continuing it")
        return promote_mod.run_canary(cfg, source, target, state.release, state.steps, hold, progress, resume=state)
    app = cfg.app(rel.app)
    promoted = promote_mod.promoted_release(cfg, source, target, rel, repo.author())
    stable = overlay.current_release(release_mod.read_overlay(cfg.root, target), target)
    wants_canary = (canary is not None or target.canary is not None) and not no_canary
    if wants_canary and sync and stable is not None and stable.id != rel.id:
        steps = promote_mod.canary_steps(target.canary or config.CanaryPolicy(), canary)
        progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name} with a canary")
        return promote_mod.run_canary(cfg, source, target, promoted, steps, hold, progress)
    if wants_canary and sync and stable is None:
        progress(f"{target.name} has no stable release yet: promoting directly, without a canary")
    progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name}")
    result = release_mod.write_release(cfg, app, target, promoted, push=push, action="promote",
                                       summary=f"{app.name} {rel.id} from {source.name}", progress=progress)
    if sync:
        result.sync = sync_mod.sync(cfg, target, progress=progress)
        result.gate = gate_and_record(cfg, app, target, result.sync, result.release, progress)
    return result


def abort(env_name: str, reason: str, progress: Progress = lambda _m: None):
    cfg = config.load()
    return promote_mod.abort(cfg, cfg.env(env_name), reason, progress)


def gate_and_record(cfg, app, env, sync_result, release, progress: Progress):
    """Gate what a sync applied; healthy is recorded in the ledger, failure rolls back."""
    gate = rollback_mod.gate_environment(cfg, env, sync_result, release.id if release else None, progress)
    if gate is None or release is None:
        return gate
    if not gate.passed:
        rollback_mod.after_failed_gate(cfg, app, env, release, gate, progress)
    progress(str(gate))
    entry = release_mod.read_ledger(cfg.root, env).find(release.id)
    if entry is None or entry.outcome in (Outcome.PENDING,):
        release_mod.record_outcome(cfg, env, release, Outcome.HEALTHY)
    return gate


def sync(env_name: str, options, lock_options, progress: Progress = lambda _m: None, gate: bool = True):
    cfg = config.load()
    env = cfg.env(env_name)
    result = sync_mod.sync(cfg, env, options, lock_options, progress)
    if gate and not options.dry_run:
        current = overlay.current_release(release_mod.read_overlay(cfg.root, env), env)
        app = cfg.apps.get(current.app) if current else None
        result.gate = gate_and_record(cfg, app, env, result, current, progress)
    return result


def rollback(env_name: str, to: str | None, reason: str, progress: Progress = lambda _m: None):
    cfg = config.load()
    env = cfg.env(env_name)
    current = overlay.current_release(release_mod.read_overlay(cfg.root, env), env)
    app = cfg.app(current.app if current else None)
    return rollback_mod.manual(cfg, app, env, to, reason, progress)
