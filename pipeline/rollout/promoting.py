"""A promotion from FROM to TO, end to end: its checks, then which apps go how.

    check the edge, TO's freeze ─► a canary in TO already? resume or continue it
    every app's healthy release in FROM ─► TO's signatures ─► apps new to TO: directly, first
                                                            └► the others: canary or directly,
                                                               as one unit or each alone

The decisions (which apps, which go first, canary or not) are made here; the commands only
open the context and call `promote`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import CanaryPolicy, Environment, Slot
from pipeline.context import Context
from pipeline.errors import PromotionError, ShipError
from pipeline.gitops.canary_overlay import CanaryState
from pipeline.gitops.records import Release
from pipeline.imageref import ImageRef
from pipeline.policy import guard
from pipeline.policy.guard import Clearance
from pipeline.rollout import canary, promotion, unit
from pipeline.rollout.canary import CanaryResult
from pipeline.rollout.release import ReleaseResult
from pipeline.rollout.unit import Results


@dataclass(frozen=True)
class PromoteOptions:
    """How `ship promote` runs; every field has a default."""

    # each app on its own (commit, sync, gate, rollback) instead of one unit
    independent: bool = False
    sync: bool = True  # sync and gate TO once committed (False: the commit alone, and no canary)
    push: bool = True  # push the commits (False: they stay in the local clone)
    canary_weight: int | None = None  # one canary step at this weight instead of TO's canary policy
    no_canary: bool = False  # straight to 100% even where TO's policy runs a canary
    hold: bool = False  # stop after the canary's current step; go on later with `resume`
    resume: bool = False  # go on with the canary TO holds, and nothing else
    override_freeze: str | None = None  # the reason to go through TO's freeze


def promote(
    ctx: Context,
    source: Environment,
    target: Environment,
    app_names: list[str],
    options: PromoteOptions = PromoteOptions(),
) -> ReleaseResult | CanaryResult | Results:
    """The named apps, or every app whose healthy release in FROM differs from TO's, as one unit
    (one commit, one sync, one gate; `independent`: each on its own). With a canary (TO's policy
    or `canary_weight`) where TO has stable releases to run beside, the canaries run side by side.
    TO's guards (freeze, signatures) and every app's health in FROM are checked before anything
    is written, a resumed canary's too."""
    promotion.check_edge(ctx.config, source, target)
    override = guard.unfrozen(ctx, target, options.override_freeze)
    states = canary.in_progress(ctx, target)
    if options.resume:
        if not states:
            raise PromotionError(
                f"no canary in {target.name} to resume (see ship status {target.name})"
            )
        return continue_canary(ctx, target, states, override, hold=False)
    apps = promotion.apps_to_promote(ctx, source, target, app_names)
    if not apps:
        return unit.Results(
            empty="nothing to promote: every app released in "
            f"{source.name} is already in {target.name}"
        )
    # every app, before writing
    rels = {name: promotion.healthy_release(ctx, Slot(source, name)) for name in apps}
    if states:
        if {s.release.app: s.release.id for s in states} != {n: r.id for n, r in rels.items()}:
            raise PromotionError(
                f"{target.name} has {', '.join(s.describe() for s in states)} "
                "in progress; finish it "
                f"with `ship promote {states[0].source} {target.name} --resume` or remove it with "
                f"`ship abort {target.name}`"
            )
        ctx.progress(
            f"{', '.join(s.describe() for s in states)} is "
            f"already in progress in {target.name}; continuing it"
        )
        return continue_canary(ctx, target, states, override, hold=options.hold)
    promoted = [
        promotion.promoted_release(ctx, source, target, rel, ctx.workspace.git.author())
        for rel in rels.values()
    ]
    clearance = Clearance(
        override, guard.signed(ctx, target, [ImageRef.parse(r.image) for r in promoted])
    )
    plan = Promotion(ctx, source, target, clearance, options)
    if options.independent and len(promoted) > 1:
        return plan.each(promoted)
    return plan.run(promoted)


def continue_canary(
    ctx: Context,
    target: Environment,
    states: list[CanaryState],
    override: guard.Override | None,
    *,
    hold: bool,
) -> CanaryResult:
    """Run canaries already in git on, their images checked again against TO's policy."""
    clearance = Clearance(
        override, guard.signed(ctx, target, [ImageRef.parse(s.release.image) for s in states])
    )
    resumed = [canary.resumed_state(ctx, target, s) for s in states]
    return canary.run_canary(ctx, target, resumed, hold=hold, clearance=clearance)


@dataclass
class Promotion:
    """How one promotion runs, once every check passed: its releases as one unit, or each alone."""

    ctx: Context
    source: Environment
    target: Environment
    clearance: Clearance
    options: PromoteOptions

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
        ctx, target, options = self.ctx, self.target, self.options
        stables = {r.app: ctx.workspace.current_release(Slot(target, r.app)) for r in promoted}
        wants_canary = (
            options.canary_weight is not None or target.canary is not None
        ) and not options.no_canary
        first = [r for r in promoted if stables[r.app] is None]
        if wants_canary and options.sync and first and len(first) < len(promoted):
            # Apps new to TO have no stable to run a canary beside: they go first, directly (as
            # their own unit), then the others' canaries run.
            ctx.progress(
                f"{', '.join(r.app for r in first)}: no stable "
                f"release in {target.name} yet: promoted "
                "directly first; the other apps run their canaries after"
            )
            direct = self.run(first)
            beside = self.run([r for r in promoted if stables[r.app] is not None])
            return Results([*(direct.results if isinstance(direct, Results) else [direct]), beside])
        refs = ", ".join(f"{r.ref} ({r.image})" for r in promoted)
        if wants_canary and options.sync and not first:
            steps = promotion.canary_steps(target.canary or CanaryPolicy(), options.canary_weight)
            ctx.progress(f"promoting {refs} from {self.source.name} to {target.name} with a canary")
            states = [canary.start_state(ctx, self.source, target, r, steps) for r in promoted]
            return canary.run_canary(
                ctx, target, states, hold=options.hold, clearance=self.clearance
            )
        if wants_canary and options.sync:
            ctx.progress(
                f"{', '.join(r.app for r in first)} in "
                f"{target.name} has no stable release yet: promoting "
                "directly, without a canary"
            )
        ctx.progress(f"promoting {refs} from {self.source.name} to {target.name}")
        releases = [(ctx.config.app(r.app), r) for r in promoted]
        written_as = unit.UnitOptions(
            together=True,
            sync=options.sync,
            push=options.push,
            action="promote",
            source=self.source,
            clearance=self.clearance,
        )
        results = unit.write_and_gate(ctx, target, releases, written_as)
        return results[0] if len(results) == 1 else unit.Results(list(results))
