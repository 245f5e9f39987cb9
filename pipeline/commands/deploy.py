"""The commands that change something: build, release, sync, promote, abort, rollback, retire.

Each takes the Context and the command's arguments, runs the flows in order and returns a
result that renders itself. Decisions stay in the flows; this module only sequences them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.config import App, Slot
from pipeline.context import Context
from pipeline.errors import ConfigError, RegistryError
from pipeline.gitops.changed import Matrix, changed_apps
from pipeline.gitops.git import Commit
from pipeline.imageref import ImageRef
from pipeline.kube.apply import SyncOptions, SyncResult
from pipeline.policy import guard
from pipeline.policy.guard import Clearance
from pipeline.rollout import gating, promoting, unit
from pipeline.rollout import retire as retiring
from pipeline.rollout import rollback as rolling_back
from pipeline.rollout.abort import AbortResult
from pipeline.rollout.abort import abort as abort_canary
from pipeline.rollout.canary import CanaryResult
from pipeline.rollout.promoting import PromoteOptions
from pipeline.rollout.release import (
    ReleaseResult,
    check_image,
    image_source,
    new_release,
    refuse_older,
    refuse_rejected,
)
from pipeline.rollout.retire import RetireResult
from pipeline.rollout.rollback import RollbackResult
from pipeline.rollout.sync import sync_environment
from pipeline.rollout.unit import Results
from pipeline.supply.build import BuildResult, Builds, build_app


def build(
    ctx: Context,
    app_names: list[str] | None = None,
    *,
    allow_dirty: bool = False,
    key: str | None = None,
    changed: bool = False,
    list_only: bool = False,
) -> BuildResult | Builds | Matrix:
    """Build the named apps (none named: every app). One app, named or the only one, and not
    --changed: its BuildResult, printed as the pinned image alone. `changed`: only the apps changed
    since their last release in the first environment; `list_only`: the apps as a matrix,
    unbuilt."""
    cfg = ctx.config
    apps = (
        [cfg.app(name) for name in dict.fromkeys(app_names)]
        if app_names
        else list(cfg.apps.values())
    )
    if changed:
        apps = changed_apps(cfg, ctx.workspace.git, apps)
    if list_only:
        return Matrix([app.name for app in apps])
    if len(apps) == 1 and not changed:
        return build_app(ctx, apps[0], allow_dirty=allow_dirty, key=key)
    if not apps:
        ctx.progress("no app changed since its last release; nothing to build")
    return Builds({app.name: build_app(ctx, app, allow_dirty=allow_dirty, key=key) for app in apps})


def _apps(ctx: Context, app_names: list[str]) -> list[App]:
    """The named apps (none: the only one; ship.yaml with several refuses and names them)."""
    return (
        [ctx.config.app(n) for n in dict.fromkeys(app_names)]
        if app_names
        else [ctx.config.app(None)]
    )


def _images(apps: list[App], images: list[str]) -> dict[str, str]:
    """`--image IMAGE` (one app) or `--image APP=IMAGE` (any number), by app."""
    out: dict[str, str] = {}
    for given in images:
        name, sep, image = given.partition("=")
        if not sep:
            if len(apps) != 1:
                raise ConfigError(f"--image {given}: with several apps, write --image APP=IMAGE")
            name, image = apps[0].name, given
        if name not in {a.name for a in apps}:
            raise ConfigError(
                f"--image {given}: {name} is not one of the apps being released "
                f"({', '.join(a.name for a in apps)})"
            )
        out[name] = image
    return out


@dataclass(frozen=True)
class ReleaseOptions:
    """How `ship release` runs; every field has a default."""

    # `IMAGE` (one app) or `APP=IMAGE`: release these instead of building
    images: tuple[str, ...] = ()
    sync: bool = True  # sync and gate ENV once committed (False: the commit alone)
    push: bool = True  # push the commit (False: it stays in the local clone)
    allow_dirty: bool = False  # build from a working tree with uncommitted changes
    allow_rejected: bool = False  # release again a release ENV's ledger says was rejected
    override_freeze: str | None = None  # the reason to go through ENV's freeze
    allow_older: bool = False  # release an image built before ENV's current release's commit


def release(
    ctx: Context,
    env_name: str,
    app_names: list[str] | str | None = None,
    options: ReleaseOptions = ReleaseOptions(),
) -> ReleaseResult | Results:
    """Checked in this order, for every app before anything is written: the tree is clean, ENV is
    not frozen (or `override_freeze` gives the reason to go through), the image is pinned and
    signed as ENV requires, it was not built before ENV's current release (or ENV's policy or
    `allow_older` lets it), and it was not rejected. Several apps: one commit and one sync, each
    app gated and rolled back on its own."""
    names_ = [app_names] if isinstance(app_names, str) else list(app_names or [])
    env, apps = ctx.config.env(env_name), _apps(ctx, names_)
    given = _images(apps, list(options.images))
    git = ctx.workspace.git
    git.require_clean(allow_dirty=options.allow_dirty)
    override = guard.unfrozen(ctx, env, options.override_freeze)
    checked = [
        (app, *_image_for(ctx, app, given.get(app.name), allow_dirty=options.allow_dirty))
        for app in apps
    ]
    clearance = Clearance(override, guard.signed(ctx, env, [ref for _, ref, _, _ in checked]))
    releases = []
    for app, ref, built_from, source in checked:
        slot = Slot(env, app.name)
        refuse_older(
            ctx,
            slot,
            built_from,
            str(ref),
            allow_older=options.allow_older or env.policy.allow_older,
        )
        rel = new_release(ctx, slot, str(ref), source, git.author(), image_commit=built_from.sha)
        refuse_rejected(ctx, slot, rel, allow_rejected=options.allow_rejected)
        releases.append((app, rel))
    written_as = unit.UnitOptions(
        sync=options.sync,
        push=options.push,
        clearance=clearance,
        new_id=True,
        extra={names.ALLOW_OLDER: "yes" if options.allow_older else None},
    )
    results = unit.write_and_gate(ctx, env, releases, written_as)
    return results[0] if len(results) == 1 else unit.Results(list(results))


def _image_for(
    ctx: Context, app: App, image: str | None, *, allow_dirty: bool
) -> tuple[ImageRef, Commit, Commit]:
    """(the pinned image, the commit it was built from, the app's last change)."""
    # the app's code, base and config as released
    source = ctx.workspace.git.last_change(app.sources, ctx.config.ignore)
    if image:
        ref = ImageRef.parse(image)
        if not ref.repository.startswith(ctx.config.registry.rstrip("/") + "/"):
            # Checked against ship's registry, the digest would say nothing of what the cluster
            # pulls.
            raise RegistryError(
                f"--image {image}: not in ship's registry "
                f"{ctx.config.registry}; ship releases only "
                "images from the registry in ship.yaml (or $SHIP_REGISTRY)"
            )
        ref = check_image(ctx.registry(), image)
        # built from its own commit, not whatever HEAD is now
        return ref, image_source(ctx, ref), source
    return build_app(ctx, app, allow_dirty=allow_dirty).image, source, source


def sync(
    ctx: Context, env_name: str, options: SyncOptions = SyncOptions(), *, gate: bool = True
) -> SyncResult:
    """Apply ENV from git; then gate every app's current release (each rolled back on its own)."""
    env = ctx.config.env(env_name)
    if not options.dry_run:
        retiring.retire_removed(ctx, env)  # apps gone from ship.yaml leave ENV first
    result = sync_environment(ctx, env, options)
    if gate and not options.dry_run:
        outcome = gating.gate_current(ctx, env, result)
        if outcome.failure is not None:
            raise outcome.failure
        result.gate = outcome.first
    return result


def promote(
    ctx: Context,
    from_name: str,
    to_name: str,
    app_names: list[str] | None = None,
    options: PromoteOptions = PromoteOptions(),
) -> ReleaseResult | CanaryResult | Results:
    """FROM's healthy releases into TO (rollout/promoting.py decides which apps, and how)."""
    return promoting.promote(
        ctx, ctx.config.env(from_name), ctx.config.env(to_name), list(app_names or []), options
    )


def abort(ctx: Context, env_name: str, reason: str, app_name: str | None = None) -> AbortResult:
    names.check_text(reason, "--reason")
    return abort_canary(ctx, ctx.config.env(env_name), reason, app_name)


def rollback(
    ctx: Context,
    env_name: str,
    app_name: str | None,
    to: str | None,
    reason: str,
    *,
    every: bool = False,
) -> RollbackResult | Results:
    """APP (named, or the only app of ENV) back on `to` (`ID` or `APP@ID`) or its previous healthy
    release; `every`: all of ENV's apps, in one commit (rollout/rollback.py decides which)."""
    names.check_text(reason, "--reason")
    env = ctx.config.env(env_name)
    ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    if every:
        return unit.Results(list(rolling_back.manual_all(ctx, env, reason, app_name, to)))
    app, to = rolling_back.owner(ctx, env, app_name, to)
    return rolling_back.manual(ctx, app, env, to, reason)


def retire(
    ctx: Context, env_name: str, app_name: str, reason: str, *, sync: bool = True
) -> RetireResult:
    names.check_text(reason, "--reason")
    return retiring.retire(ctx, ctx.config.env(env_name), app_name, reason, sync=sync)
