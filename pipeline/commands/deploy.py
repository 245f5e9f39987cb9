"""The commands that change something: build, release, sync, promote, abort, rollback.

Each takes the Context and the command's arguments, runs the flows in order and returns a
result that renders itself. Decisions stay in the flows; this module only sequences them.
"""

from __future__ import annotations

from pipeline import names
from pipeline.config import CanaryPolicy, Environment
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.gitops.canary_overlay import CanaryState
from pipeline.image.build import BuildResult, build_app
from pipeline.image.registry import ImageRef
from pipeline.image.verify import pinned_images
from pipeline.kube.apply import SyncOptions, SyncResult
from pipeline.kube.lock import LockOptions
from pipeline.policy import guard
from pipeline.policy.guard import Clearance
from pipeline.rollout import canary, promotion
from pipeline.rollout import rollback as rolling_back
from pipeline.rollout.abort import AbortResult
from pipeline.rollout.abort import abort as abort_canary
from pipeline.rollout.canary import CanaryResult
from pipeline.rollout.gating import gate_and_record
from pipeline.rollout.release import (ReleaseResult, check_image, image_source, new_release, refuse_older,
                                      refuse_rejected, write_release)
from pipeline.rollout.rollback import RollbackResult
from pipeline.rollout.sync import sync_environment


def build(ctx: Context, app_name: str | None, allow_dirty: bool = False, key: str | None = None) -> BuildResult:
    return build_app(ctx, ctx.config.app(app_name), allow_dirty=allow_dirty, key=key)


def release(ctx: Context, env_name: str, app_name: str | None, *, image: str | None = None, sync: bool = True,
            push: bool = True, allow_dirty: bool = False, allow_rejected: bool = False,
            override_freeze: str | None = None, allow_older: bool = False) -> ReleaseResult:
    """Checked in this order, each before anything is written: the tree is clean, ENV is not frozen
    (or `override_freeze` gives the reason to go through), the image is pinned and signed as ENV
    requires, it was not built before ENV's current release (or ENV's policy or `allow_older` lets
    it), and it was not rejected."""
    env, app = ctx.config.env(env_name), ctx.config.app(app_name)
    git = ctx.workspace.git
    git.require_clean(allow_dirty)
    override = guard.unfrozen(ctx, env, override_freeze)
    source = git.last_change(str(app.path))  # the app's code, base and config as released
    if image:
        ref = check_image(ctx.registry(), image)
        built_from = image_source(ctx, ref)  # the commit the image was built from, not whatever HEAD is now
    else:
        ref, built_from = build_app(ctx, app, allow_dirty=allow_dirty).image, source
    clearance = Clearance(override, guard.signed(ctx, env, [ref]))
    refuse_older(ctx, env, built_from, str(ref), allow_older or env.policy.allow_older)
    rel = new_release(ctx, app, env, str(ref), source, git.author(), image_commit=built_from.sha)
    refuse_rejected(ctx, env, rel, allow_rejected)
    if sync:
        ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    result = write_release(ctx, app, env, rel, push=push, new_id=True, override=clearance.note,
                           extra={**clearance.trailers(), names.ALLOW_OLDER: "yes" if allow_older else None})
    if sync:
        result.sync = sync_environment(ctx, env)
        result.gate = gate_and_record(ctx, app, env, result.sync, result.release)
    return result


def sync(ctx: Context, env_name: str, options: SyncOptions = SyncOptions(), lock: LockOptions = LockOptions(),
         gate: bool = True) -> SyncResult:
    env = ctx.config.env(env_name)
    if env.policy.require_signature:
        guard.signed(ctx, env, pinned_images(ctx, env))  # before anything is applied
    result = sync_environment(ctx, env, options, lock)
    if gate and not options.dry_run:
        current = ctx.workspace.current_release(env)
        app = ctx.config.apps.get(current.app) if current else None
        result.gate = gate_and_record(ctx, app, env, result, current)
    return result


def promote(ctx: Context, from_name: str, to_name: str, *, sync: bool = True, push: bool = True,
            canary_weight: int | None = None, no_canary: bool = False, hold: bool = False,
            resume: bool = False, override_freeze: str | None = None) -> ReleaseResult | CanaryResult:
    """A plain promotion or, when TO has a canary policy or `canary_weight` is given and there is a
    stable release to run beside, a canary promotion. TO's guards (freeze, signatures) run before
    anything is written, a resumed canary's too."""
    cfg = ctx.config
    source, target = cfg.env(from_name), cfg.env(to_name)
    promotion.check_edge(cfg, source, target)
    override = guard.unfrozen(ctx, target, override_freeze)
    state = ctx.workspace.canary_state(target)
    if resume:
        if state is None:
            raise PromotionError(f"no canary in {target.name} to resume (see ship status {target.name})")
        return _continue_canary(ctx, target, state, False, override)
    rel = promotion.healthy_release(ctx, source)
    if state is not None:
        if state.release.id != rel.id:
            raise PromotionError(f"{target.name} has {state.describe()} in progress; finish it with `ship promote "
                                 f"{state.source} {target.name} --resume` or remove it with `ship abort {target.name}`")
        ctx.progress(f"{state.describe()} is already in progress in {target.name}; continuing it")
        return _continue_canary(ctx, target, state, hold, override)
    app = cfg.app(rel.app)
    promoted = promotion.promoted_release(ctx, source, target, rel, ctx.workspace.git.author())
    clearance = Clearance(override, guard.signed(ctx, target, [ImageRef.parse(rel.image)]))
    stable = ctx.workspace.current_release(target)
    wants_canary = (canary_weight is not None or target.canary is not None) and not no_canary
    if wants_canary and sync and stable is not None and stable.id != rel.id:
        steps = promotion.canary_steps(target.canary or CanaryPolicy(), canary_weight)
        ctx.progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name} with a canary")
        return canary.run_canary(ctx, target, canary.start_state(ctx, source, target, promoted, steps), hold, clearance)
    if wants_canary and sync and stable is None:
        ctx.progress(f"{target.name} has no stable release yet: promoting directly, without a canary")
    if sync:
        ctx.cluster(target)  # TO's cluster is reachable before anything is committed
    ctx.progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name}")
    result = write_release(ctx, app, target, promoted, push=push, action="promote",
                           title=f"promote({target.name}): {app.name} {rel.id} from {source.name}",
                           extra=clearance.trailers(), override=clearance.note)
    result.source = source.name
    if sync:
        result.sync = sync_environment(ctx, target)
        result.gate = gate_and_record(ctx, app, target, result.sync, result.release)
    return result


def _continue_canary(ctx: Context, target: Environment, state: CanaryState, hold: bool,
                     override: guard.Override | None) -> CanaryResult:
    """Run a canary already in git on, its image checked again against TO's policy."""
    clearance = Clearance(override, guard.signed(ctx, target, [ImageRef.parse(state.release.image)]))
    return canary.run_canary(ctx, target, canary.resumed_state(ctx, target, state), hold, clearance)


def abort(ctx: Context, env_name: str, reason: str) -> AbortResult:
    return abort_canary(ctx, ctx.config.env(env_name), reason)


def rollback(ctx: Context, env_name: str, to: str | None, reason: str) -> RollbackResult:
    env = ctx.config.env(env_name)
    ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    current = ctx.workspace.current_release(env)
    app = ctx.config.app(current.app if current else None)
    return rolling_back.manual(ctx, app, env, to, reason)
