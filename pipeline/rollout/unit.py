"""Several apps released or promoted as one unit: one commit, one sync, one gate over all.

    write every app's release into its slot ─► one commit ─► one sync ─► gate each app
    all healthy: one ledger commit        any failed: every app of the unit back, one commit

`--independent` (and `ship release` of several apps) gates and rolls back each app on its own
instead. The results of several commands render as one (`Results`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.config import App, Environment
from pipeline.context import Context
from pipeline.errors import ShipError
from pipeline.gitops.records import Release
from pipeline.policy.guard import Clearance
from pipeline.rollout.gating import gate_apps
from pipeline.rollout.release import ReleaseResult, write_releases
from pipeline.rollout.sync import sync_environment


@dataclass
class Results:
    """What a command did to several apps; `failure`: the first error, raised after printing."""

    results: list[Any] = field(default_factory=list)
    empty: str = ""  # said when there were none
    failure: ShipError | None = None

    def text(self) -> str:
        return "\n".join(r.text() for r in self.results) or self.empty

    def to_json(self) -> dict:
        return {"results": [r.to_json() for r in self.results], "message": self.empty if not self.results else None,
                "error": str(self.failure) if self.failure else None}


def write_and_gate(ctx: Context, env: Environment, releases: list[tuple[App, Release]], *, together: bool,
                   sync: bool = True, push: bool = True, action: str = "release", source: Environment | None = None,
                   clearance: Clearance = Clearance(), extra: dict[str, str | None] | None = None,
                   new_id: bool = False) -> list[ReleaseResult]:
    """Write the releases in one commit, then (with `sync`) one sync and a gate per app; together:
    one failure sends the whole unit back (gating.gate_apps)."""
    if sync:
        ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    refs = ", ".join(f"{app.name}@{rel.id}" for app, rel in releases)
    count = f"{len(releases)} apps: " if len(releases) > 1 else ""
    title = (f"promote({env.name}): {count}{refs} from {source.name}" if source else None)
    results = write_releases(ctx, env, releases, push=push, action=action, title=title, new_id=new_id,
                             extra={**clearance.trailers(), **(extra or {})}, override=clearance.note)
    for r in results:
        r.source = source.name if source else None
    if sync:
        synced = sync_environment(ctx, env)
        written = [(app, r.release) for (app, _), r in zip(releases, results, strict=True)]
        try:
            outcome = gate_apps(ctx, env, synced, written, together=together)
        finally:
            for r in results:
                r.sync = synced
        if outcome.failure is not None:
            raise outcome.failure
        for r in results:
            r.gate = outcome.gates.get(r.release.app)
            r.show_sync = r is results[-1]
    return results
