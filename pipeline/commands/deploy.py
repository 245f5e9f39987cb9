"""The commands that change something: build, release, sync, promote, abort, rollback.

Each takes the Context and the command's arguments, runs the flows in order and returns a
result that renders itself. Decisions stay in the flows; this module only sequences them.
"""

from __future__ import annotations

from pipeline.config import CanaryPolicy
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.image.build import BuildResult, build_app
from pipeline.kube.apply import SyncOptions, SyncResult
from pipeline.kube.lock import LockOptions
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


def build(ctx: Context, app_name: str | None, allow_dirty: bool = False) -> BuildResult:
    return build_app(ctx, ctx.config.app(app_name), allow_dirty=allow_dirty)


def release(ctx: Context, env_name: str, app_name: str | None, *, image: str | None = None, sync: bool = True,
            push: bool = True, allow_dirty: bool = False, allow_rejected: bool = False,
            allow_older: bool = False) -> ReleaseResult:
    env, app = ctx.config.env(env_name), ctx.config.app(app_name)
    git = ctx.workspace.git
    git.require_clean(allow_dirty)
    if image:
        ref = check_image(ctx.registry(), image)
        source = image_source(ctx, ref)  # the commit it was built from, not whatever HEAD is now
    else:
        built = build_app(ctx, app, allow_dirty=allow_dirty)
        ref, source = built.image, git.last_change(str(app.path))
    refuse_older(ctx, env, source, str(ref), allow_older)
    rel = new_release(ctx, app, env, str(ref), source, git.author())
    refuse_rejected(ctx, env, rel, allow_rejected)
    result = write_release(ctx, app, env, rel, push=push, new_id=True,
                           extra={"Allow-Older": "yes" if allow_older else None})
    if sync:
        result.sync = sync_environment(ctx, env)
        result.gate = gate_and_record(ctx, app, env, result.sync, result.release)
    return result


def sync(ctx: Context, env_name: str, options: SyncOptions = SyncOptions(), lock: LockOptions = LockOptions(),
         gate: bool = True) -> SyncResult:
    env = ctx.config.env(env_name)
    result = sync_environment(ctx, env, options, lock)
    if gate and not options.dry_run:
        current = ctx.workspace.current_release(env)
        app = ctx.config.apps.get(current.app) if current else None
        result.gate = gate_and_record(ctx, app, env, result, current)
    return result


def promote(ctx: Context, from_name: str, to_name: str, *, sync: bool = True, push: bool = True,
            canary_weight: int | None = None, no_canary: bool = False, hold: bool = False,
            resume: bool = False) -> ReleaseResult | CanaryResult:
    """A plain promotion or, when TO has a canary policy or `canary_weight` is given and there is a
    stable release to run beside, a canary promotion."""
    cfg = ctx.config
    source, target = cfg.env(from_name), cfg.env(to_name)
    promotion.check_edge(cfg, source, target)
    state = ctx.workspace.canary_state(target)
    if resume:
        if state is None:
            raise PromotionError(f"no canary in {target.name} to resume (see ship status {target.name})")
        return canary.run_canary(ctx, target, canary.resumed_state(ctx, target, state), False)
    rel = promotion.healthy_release(ctx, source)
    if state is not None:
        if state.release.id != rel.id:
            raise PromotionError(f"{target.name} has {state.describe()} in progress; finish it with `ship promote "
                                 f"{state.source} {target.name} --resume` or remove it with `ship abort {target.name}`")
        ctx.progress(f"{state.describe()} is already in progress in {target.name}; continuing it")
        return canary.run_canary(ctx, target, canary.resumed_state(ctx, target, state), hold)
    app = cfg.app(rel.app)
    promoted = promotion.promoted_release(ctx, source, target, rel, ctx.workspace.git.author())
    stable = ctx.workspace.current_release(target)
    wants_canary = (canary_weight is not None or target.canary is not None) and not no_canary
    if wants_canary and sync and stable is not None and stable.id != rel.id:
        steps = promotion.canary_steps(target.canary or CanaryPolicy(), canary_weight)
        ctx.progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name} with a canary")
        return canary.run_canary(ctx, target, canary.start_state(ctx, source, target, promoted, steps), hold)
    if wants_canary and sync and stable is None:
        ctx.progress(f"{target.name} has no stable release yet: promoting directly, without a canary")
    ctx.progress(f"promoting {rel.id} ({rel.image}) from {source.name} to {target.name}")
    result = write_release(ctx, app, target, promoted, push=push, action="promote",
                           title=f"promote({target.name}): {app.name} {rel.id} from {source.name}")
    result.source = source.name
    if sync:
        result.sync = sync_environment(ctx, target)
        result.gate = gate_and_record(ctx, app, target, result.sync, result.release)
    return result


def abort(ctx: Context, env_name: str, reason: str) -> AbortResult:
    return abort_canary(ctx, ctx.config.env(env_name), reason)


def rollback(ctx: Context, env_name: str, to: str | None, reason: str) -> RollbackResult:
    env = ctx.config.env(env_name)
    current = ctx.workspace.current_release(env)
    app = ctx.config.app(current.app if current else None)
    return rolling_back.manual(ctx, app, env, to, reason)
