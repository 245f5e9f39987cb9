"""The commands that change something: build, release, sync, promote, abort, rollback, retire.

Each takes the Context and the command's arguments, runs the flows in order and returns a
result that renders itself. Decisions stay in the flows; this module only sequences them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.config import App, CanaryPolicy, Environment
from pipeline.context import Context
from pipeline.errors import ConfigError, PromotionError, RegistryError, ShipError
from pipeline.gitops.git import Commit
from pipeline.gitops.records import Release
from pipeline.gitops.canary_overlay import CanaryState
from pipeline.supply.build import BuildResult, Builds, build_app
from pipeline.gitops.changed import Matrix, changed_apps
from pipeline.imageref import ImageRef
from pipeline.kube.apply import SyncOptions, SyncResult
from pipeline.policy import guard
from pipeline.policy.guard import Clearance
from pipeline.rollout import canary, promotion
from pipeline.rollout import rollback as rolling_back
from pipeline.rollout.abort import AbortResult
from pipeline.rollout.abort import abort as abort_canary
from pipeline.rollout.canary import CanaryResult
from pipeline.rollout import retire as retiring
from pipeline.rollout import unit
from pipeline.rollout.gating import gate_and_record, gate_apps
from pipeline.rollout.retire import RetireResult
from pipeline.rollout.unit import Results
from pipeline.rollout.release import (ReleaseResult, check_image, image_source, new_release, refuse_older,
                                      refuse_rejected)
from pipeline.rollout.rollback import RollbackResult
from pipeline.rollout.sync import sync_environment


def build(ctx: Context, app_names: list[str] | None = None, allow_dirty: bool = False, key: str | None = None, *,
          changed: bool = False, list_only: bool = False) -> BuildResult | Builds | Matrix:
    """Build the named apps (none named: every app). One app, named or the only one, and not
    --changed: its BuildResult, printed as the pinned image alone. `changed`: only the apps changed
    since their last release in the first environment; `list_only`: the apps as a matrix, unbuilt."""
    cfg = ctx.config
    apps = [cfg.app(name) for name in dict.fromkeys(app_names)] if app_names else list(cfg.apps.values())
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
    return [ctx.config.app(n) for n in dict.fromkeys(app_names)] if app_names else [ctx.config.app(None)]


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
            raise ConfigError(f"--image {given}: {name} is not one of the apps being released "
                              f"({', '.join(a.name for a in apps)})")
        out[name] = image
    return out


def release(ctx: Context, env_name: str, app_names: list[str] | str | None = None, *, images: list[str] | None = None,
            image: str | None = None, sync: bool = True, push: bool = True, allow_dirty: bool = False,
            allow_rejected: bool = False, override_freeze: str | None = None,
            allow_older: bool = False) -> ReleaseResult | Results:
    """Checked in this order, for every app before anything is written: the tree is clean, ENV is
    not frozen (or `override_freeze` gives the reason to go through), the image is pinned and
    signed as ENV requires, it was not built before ENV's current release (or ENV's policy or
    `allow_older` lets it), and it was not rejected. Several apps: one commit and one sync, each
    app gated and rolled back on its own."""
    names_ = [app_names] if isinstance(app_names, str) else list(app_names or [])
    env, apps = ctx.config.env(env_name), _apps(ctx, names_)
    given = _images(apps, [*(images or []), *([image] if image else [])])
    git = ctx.workspace.git
    git.require_clean(allow_dirty)
    override = guard.unfrozen(ctx, env, override_freeze)
    checked = [(app, *_image_for(ctx, app, given.get(app.name), allow_dirty)) for app in apps]
    clearance = Clearance(override, guard.signed(ctx, env, [ref for _, ref, _, _ in checked]))
    releases = []
    for app, ref, built_from, source in checked:
        slot = env.slot(app.name)
        refuse_older(ctx, slot, built_from, str(ref), allow_older or env.policy.allow_older)
        rel = new_release(ctx, app, slot, str(ref), source, git.author(), image_commit=built_from.sha)
        refuse_rejected(ctx, slot, rel, allow_rejected)
        releases.append((app, rel))
    results = unit.write_and_gate(ctx, env, releases, together=False, sync=sync, push=push, clearance=clearance,
                                  new_id=True, extra={names.ALLOW_OLDER: "yes" if allow_older else None})
    return results[0] if len(results) == 1 else unit.Results(list(results))


def _image_for(ctx: Context, app: App, image: str | None, allow_dirty: bool) -> tuple[ImageRef, Commit, Commit]:
    """(the pinned image, the commit it was built from, the app's last change)."""
    source = ctx.workspace.git.last_change(app.sources, ctx.config.ignore)  # the app's code, base and config as released
    if image:
        ref = ImageRef.parse(image)
        if not ref.repository.startswith(ctx.config.registry.rstrip("/") + "/"):
            # Checked against ship's registry, the digest would say nothing of what the cluster pulls.
            raise RegistryError(f"--image {image}: not in ship's registry {ctx.config.registry}; ship releases only "
                                "images from the registry in ship.yaml (or $SHIP_REGISTRY)")
        ref = check_image(ctx.registry(), image)
        return ref, image_source(ctx, ref), source  # built from its own commit, not whatever HEAD is now
    return build_app(ctx, app, allow_dirty=allow_dirty).image, source, source


def sync(ctx: Context, env_name: str, options: SyncOptions = SyncOptions(), gate: bool = True) -> SyncResult:
    """Apply ENV from git; then gate every app's current release (each rolled back on its own)."""
    env = ctx.config.env(env_name)
    if not options.dry_run:
        retiring.retire_removed(ctx, env)  # apps gone from ship.yaml leave ENV first
    result = sync_environment(ctx, env, options)
    if gate and not options.dry_run:
        current = [(ctx.config.apps[n], rel) for n in ctx.workspace.apps_in(env) if n in ctx.config.apps
                   and (rel := ctx.workspace.current_release(env.slot(n))) is not None]
        gates = gate_apps(ctx, env, result, current, together=False) if current else {}
        result.gate = next((g for g in gates.values() if g is not None), None) if current else \
            gate_and_record(ctx, None, env, result, None)
    return result


def promote(ctx: Context, from_name: str, to_name: str, app_names: list[str] | None = None, *,
            independent: bool = False, sync: bool = True, push: bool = True, canary_weight: int | None = None,
            no_canary: bool = False, hold: bool = False, resume: bool = False,
            override_freeze: str | None = None) -> ReleaseResult | CanaryResult | Results:
    """The named apps, or every app whose healthy release in FROM differs from TO's, as one unit
    (one commit, one sync, one gate; `independent`: each on its own). With a canary (TO's policy
    or `canary_weight`) where TO has stable releases to run beside, the canaries run side by side.
    TO's guards (freeze, signatures) and every app's health in FROM are checked before anything
    is written, a resumed canary's too."""
    cfg = ctx.config
    source, target = cfg.env(from_name), cfg.env(to_name)
    promotion.check_edge(cfg, source, target)
    override = guard.unfrozen(ctx, target, override_freeze)
    states = canary.in_progress(ctx, target)
    if resume:
        if not states:
            raise PromotionError(f"no canary in {target.name} to resume (see ship status {target.name})")
        return _continue_canary(ctx, target, states, False, override)
    apps = promotion.apps_to_promote(ctx, source, target, list(app_names or []))
    if not apps:
        return unit.Results(empty=f"nothing to promote: every app released in {source.name} is already in {target.name}")
    rels = {name: promotion.healthy_release(ctx, source.slot(name)) for name in apps}  # every app, before writing
    if states:
        if {s.release.app: s.release.id for s in states} != {n: r.id for n, r in rels.items()}:
            raise PromotionError(f"{target.name} has {', '.join(s.describe() for s in states)} in progress; finish it "
                                 f"with `ship promote {states[0].source} {target.name} --resume` or remove it with "
                                 f"`ship abort {target.name}`")
        ctx.progress(f"{', '.join(s.describe() for s in states)} is already in progress in {target.name}; continuing it")
        return _continue_canary(ctx, target, states, hold, override)
    promoted = [promotion.promoted_release(ctx, source, target, rel, ctx.workspace.git.author()) for rel in rels.values()]
    clearance = Clearance(override, guard.signed(ctx, target, [ImageRef.parse(r.image) for r in promoted]))
    plan = _Promotion(ctx, source, target, clearance, sync, push, canary_weight, no_canary, hold)
    if independent and len(promoted) > 1:
        return plan.each(promoted)
    return plan.run(promoted)


@dataclass
class _Promotion:
    """How one promotion runs, once every check passed: its releases as one unit, or each alone."""

    ctx: Context
    source: Environment
    target: Environment
    clearance: Clearance
    sync: bool
    push: bool
    canary_weight: int | None
    no_canary: bool
    hold: bool

    def each(self, promoted: list[Release]) -> Results:
        results = unit.Results()
        for rel in promoted:
            try:
                results.results.append(self.run([rel]))
            except ShipError as exc:  # one app's failure never stops, nor rolls back, the others
                self.ctx.progress(f"{rel.ref}: {type(exc).__name__}: {exc}")
                results.failure = results.failure or exc
        return results

    def run(self, promoted: list[Release]) -> ReleaseResult | CanaryResult | Results:
        ctx, target = self.ctx, self.target
        stables = {r.app: ctx.workspace.current_release(target.slot(r.app)) for r in promoted}
        wants_canary = (self.canary_weight is not None or target.canary is not None) and not self.no_canary
        first = [r for r in promoted if stables[r.app] is None]
        if wants_canary and self.sync and first and len(first) < len(promoted):
            # Apps new to TO have no stable to run a canary beside: they go first, directly (as
            # their own unit), then the others' canaries run.
            ctx.progress(f"{', '.join(r.app for r in first)}: no stable release in {target.name} yet: promoted "
                         "directly first; the other apps run their canaries after")
            direct = self.run(first)
            beside = self.run([r for r in promoted if stables[r.app] is not None])
            return Results([*(direct.results if isinstance(direct, Results) else [direct]), beside])
        refs = ", ".join(f"{r.ref} ({r.image})" for r in promoted)
        if wants_canary and self.sync and not first:
            steps = promotion.canary_steps(target.canary or CanaryPolicy(), self.canary_weight)
            ctx.progress(f"promoting {refs} from {self.source.name} to {target.name} with a canary")
            states = [canary.start_state(ctx, self.source, target, r, steps) for r in promoted]
            return canary.run_canary(ctx, target, states, self.hold, self.clearance)
        if wants_canary and self.sync:
            ctx.progress(f"{', '.join(r.app for r in first)} in {target.name} has no stable release yet: promoting "
                         "directly, without a canary")
        ctx.progress(f"promoting {refs} from {self.source.name} to {target.name}")
        releases = [(ctx.config.app(r.app), r) for r in promoted]
        results = unit.write_and_gate(ctx, target, releases, together=True, sync=self.sync, push=self.push,
                                      action="promote", source=self.source, clearance=self.clearance)
        return results[0] if len(results) == 1 else unit.Results(list(results))


def _continue_canary(ctx: Context, target: Environment, states: list[CanaryState], hold: bool,
                     override: guard.Override | None) -> CanaryResult:
    """Run canaries already in git on, their images checked again against TO's policy."""
    clearance = Clearance(override, guard.signed(ctx, target, [ImageRef.parse(s.release.image) for s in states]))
    return canary.run_canary(ctx, target, [canary.resumed_state(ctx, target, s) for s in states], hold, clearance)


def abort(ctx: Context, env_name: str, reason: str, app_name: str | None = None) -> AbortResult:
    names.check_text(reason, "--reason")
    return abort_canary(ctx, ctx.config.env(env_name), reason, app_name)


def rollback(ctx: Context, env_name: str, app_name: str | None, to: str | None, reason: str,
             every: bool = False) -> RollbackResult | Results:
    """APP (named, or the only app of ENV) back on `to` (`ID` or `APP@ID`) or its previous healthy
    release; `every`: all of ENV's apps, in one commit."""
    names.check_text(reason, "--reason")
    env = ctx.config.env(env_name)
    ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    if every:
        if app_name or to:
            raise ConfigError("--all rolls every app back to its previous healthy release; it takes no APP or --to")
        return unit.Results(list(rolling_back.manual_all(ctx, env, reason)))
    app, to = _rollback_app(ctx, env, app_name, to)
    return rolling_back.manual(ctx, app, env, to, reason)


def _rollback_app(ctx: Context, env: Environment, app_name: str | None, to: str | None) -> tuple[App, str | None]:
    """The app a rollback moves and the id it returns to; refuses another app's release."""
    owner, _, rid = (to or "").rpartition("@")
    if owner and app_name and owner != app_name:
        raise PromotionError(f"release {to} belongs to {owner}, not {app_name}: an app only rolls back to its own "
                             "releases")
    app_name = app_name or owner or None
    if app_name is None:
        released = [n for n in ctx.workspace.apps_in(env) if n in ctx.config.apps]
        if len(released) > 1:
            raise PromotionError(f"{env.name} holds several apps ({', '.join(released)}): name one "
                                 f"(ship rollback {env.name} APP), or roll back all with --all")
        app_name = released[0] if released else None
    app = ctx.config.app(app_name)
    if rid and ctx.workspace.ledger(env.slot(app.name)).find(rid) is None:
        others = [n for n in ctx.workspace.ledger_apps(env) if ctx.workspace.ledger(env.slot(n)).find(rid)]
        if others:
            raise PromotionError(f"release {rid} is {others[0]}'s, not {app.name}'s: an app only rolls back to its "
                                 "own releases")
    return app, rid or None


def retire(ctx: Context, env_name: str, app_name: str, reason: str, sync: bool = True) -> RetireResult:
    names.check_text(reason, "--reason")
    return retiring.retire(ctx, ctx.config.env(env_name), app_name, reason, sync)
