"""`ship promote FROM TO`: move the release that is healthy in FROM to TO, never rebuilding.

TO gets FROM's pinned image digest and the same release id; its config is TO's own, as a new
versioned immutable ConfigMap. Then it is written, committed, pushed, synced and gated, and
rolled back automatically on failure, exactly as a release. Refused when FROM → TO is not an
edge of ship.yaml, when the release was rejected, or when FROM is not healthy right now.
With a canary (canary.py) the release first runs beside TO's stable release.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline import names
from pipeline.config import CanaryPolicy, CanaryStep, Environment, ShipConfig, Slot
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.gitops.chart import folder_of
from pipeline.gitops.records import Release
from pipeline.kube import health


def check_edge(cfg: ShipConfig, source: Environment, target: Environment) -> None:
    if target.promotes_from != source.name:
        allowed = [e.name for e in cfg.environments.values() if e.promotes_from == source.name]
        raise PromotionError(
            f"{source.name} → {target.name} is not a promotion edge in ship.yaml "
            f"({source.name} promotes to: {', '.join(allowed) or 'nothing'})"
        )


def healthy_release(ctx: Context, slot: Slot) -> Release:
    """The app's current release in the slot's environment (a promotion's FROM), if its ledger
    says healthy and its Deployments are healthy live."""
    env = slot.env
    current = ctx.workspace.current_release(slot)
    if current is None:
        raise PromotionError(f"{slot.app} is not released in {env.name}")
    entry = ctx.workspace.ledger(slot).find(current.id)
    if entry is None or not entry.outcome.runnable:
        outcome = entry.outcome.value if entry else "not in the ledger"
        raise PromotionError(
            f"{current.ref} in {env.name} is {outcome}"
            + (f" ({entry.reason})" if entry and entry.reason else "")
            + "; only a healthy release is promoted"
        )
    live = ctx.cluster(env).list(
        "apps/v1", "Deployment", env.namespace, selector=names.env_selector(env.name)
    )
    mine = [
        d
        for d in live
        if (d["metadata"].get("annotations") or {}).get(names.RELEASE) == current.id
        and (d["metadata"].get("labels") or {}).get(names.APP_LABEL, current.app) == current.app
    ]
    if not mine:
        raise PromotionError(
            f"{current.ref} is not running in {env.name} (namespace {env.namespace}); sync it first"
        )
    for dep in mine:
        h = health.assess_deployment(dep)
        if not h.ok:
            raise PromotionError(
                f"{env.name} is not healthy: {h.subject} {h.code.value}: {h.message}"
            )
    return current


def apps_to_promote(
    ctx: Context, source: Environment, target: Environment, apps: list[str]
) -> list[str]:
    """The apps a promotion moves: the named ones (each known and released in FROM), or every app
    whose release in FROM differs from TO's."""
    released = ctx.workspace.apps_in(source)
    if not released:
        raise PromotionError(f"nothing is released to {source.name} yet")
    for name in apps:
        ctx.config.app(name)  # an unknown app is a ConfigError naming ship.yaml's apps
        if name not in released:
            raise PromotionError(
                f"{name} is not released in {source.name} (released there: "
                f"{', '.join(released) or 'nothing'})"
            )
    if apps:
        return list(dict.fromkeys(apps))
    out = []
    for name in released:
        if name not in ctx.config.apps:
            continue  # retired from ship.yaml; its folder goes at the next sync of FROM
        theirs = ctx.workspace.current_release(Slot(source, name))
        ours = ctx.workspace.current_release(Slot(target, name))
        if theirs is not None and (
            ours is None or (ours.id, ours.image) != (theirs.id, theirs.image)
        ):
            out.append(name)
    return out


def promoted_release(
    ctx: Context, source: Environment, target: Environment, rel: Release, author: str
) -> Release:
    """The release as TO runs it: same id, commit and image; TO's own config."""
    if ctx.workspace.ledger(Slot(target, rel.app)).is_rejected(rel.id):
        raise PromotionError(f"{rel.ref} was rejected in {target.name}; it is not promoted again")
    app = ctx.config.app(rel.app)
    data = ctx.workspace.config_data(app, target)
    chart, digest = (None, None)
    # the chart FROM runs (promotion never rebuilds), with TO's own values
    if app.chart is not None:
        ran = (
            Slot(source, app.name).overlay / folder_of(rel.chart, rel.chart_digest) / app.chart.name
            if rel.chart and rel.chart_digest
            else None
        )
        found = ran if ran and (ctx.workspace.root / ran / "Chart.yaml").is_file() else None
        base = ctx.workspace.chart_base(app, Slot(target, app.name), source=found)
        chart, digest = base.chart, base.digest
    return replace(
        rel,
        environment=target.name,
        config="",
        config_data=data,
        promoted_from=source.name,
        created_at=ctx.clock.iso(),
        created_by=author,
        chart=chart,
        chart_digest=digest,
    )


def canary_steps(policy: CanaryPolicy, weight: int | None) -> tuple[CanaryStep, ...]:
    """The policy's steps, or one step at `weight` (`--canary 10`) baking as long as the first
    step."""
    if weight is None:
        return policy.steps
    if not 0 < weight <= 100:
        raise PromotionError(f"--canary {weight}: expected a percentage between 1 and 100")
    return (CanaryStep(weight, policy.steps[0].bake if policy.steps else 30.0),)


def steps_text(steps: tuple[CanaryStep, ...]) -> str:
    return " → ".join(f"{s.weight}%" for s in steps)
