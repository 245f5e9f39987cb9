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
from pipeline.rollout.release import ReleaseResult, WriteOptions, write_releases
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
        return {
            "results": [r.to_json() for r in self.results],
            "message": self.empty if not self.results else None,
            "error": str(self.failure) if self.failure else None,
        }


@dataclass(frozen=True)
class UnitOptions:
    """How `write_and_gate` writes, syncs and gates a set of releases; every field has a default."""

    # one unit: one failure sends every app back; else each app is rolled back on its own
    together: bool = False
    sync: bool = True  # sync and gate once committed (False: the commit alone)
    push: bool = True  # push the commit (False: it stays in the local clone)
    action: str = "release"  # the commit's type: release or promote
    # a promotion's FROM: named in the commit's title and the results
    source: Environment | None = None
    # the guards the releases went through (trailers, ledger note)
    clearance: Clearance = Clearance()
    extra: dict[str, str | None] = field(default_factory=dict)  # more commit trailers
    # new releases: ids settled against the ledger as pushed (release.WriteOptions)
    new_id: bool = False


def write_and_gate(
    ctx: Context,
    env: Environment,
    releases: list[tuple[App, Release]],
    options: UnitOptions = UnitOptions(),
) -> list[ReleaseResult]:
    """Write the releases in one commit, then (with `sync`) one sync and a gate per app; together:
    one failure sends the whole unit back (gating.gate_apps)."""
    source, clearance = options.source, options.clearance
    if options.sync:
        ctx.cluster(env)  # ENV's cluster is reachable before anything is committed
    refs = ", ".join(f"{app.name}@{rel.id}" for app, rel in releases)
    count = f"{len(releases)} apps: " if len(releases) > 1 else ""
    title = f"promote({env.name}): {count}{refs} from {source.name}" if source else None
    written_as = WriteOptions(
        push=options.push,
        action=options.action,
        title=title,
        new_id=options.new_id,
        extra={**clearance.trailers(), **options.extra},
        override=clearance.note,
    )
    results = write_releases(ctx, env, releases, written_as)
    for r in results:
        r.source = source.name if source else None
    if options.sync:
        synced = sync_environment(ctx, env)
        written = [(app, r.release) for (app, _), r in zip(releases, results, strict=True)]
        try:
            outcome = gate_apps(ctx, env, synced, written, together=options.together)
        finally:
            for r in results:
                r.sync = synced
        if outcome.failure is not None:
            raise outcome.failure
        for r in results:
            r.gate = outcome.gates.get(r.release.app)
            r.show_sync = r is results[-1]
    return results
