"""`ship promote FROM TO`: move the release that is healthy in FROM to TO, never rebuilding.

TO gets FROM's pinned image digest and the same release id; its config is TO's own, as a new
versioned immutable ConfigMap. Then it is written, committed, pushed, synced and gated, and
rolled back automatically on failure, exactly as a release. Refused when FROM → TO is not an
edge of ship.yaml, when the release was rejected, or when FROM is not healthy right now.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline import health, overlay
from pipeline.config import Environment, ShipConfig
from pipeline.errors import PromotionError
from pipeline.ledger import Outcome
from pipeline.release import load_config_data, now_iso, read_ledger, read_overlay
from pipeline.sync import connect


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
