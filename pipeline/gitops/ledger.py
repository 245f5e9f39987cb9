"""An app's ledger in one environment: every release of the app it received and what became of it.

`environments/ENV/APP/ledger.yaml` lists releases oldest first, each with its image, config
version, the config values themselves (plain config, never secrets: so a rollback can recreate
a ConfigMap already dropped from the overlay), its outcome and the reason, and, when it came in
through a freeze, who overrode it and why. Every change to it is a commit, so git history tells
the same story. An environment's whole history is its apps' ledgers merged by time
(Workspace.ledger). Pure: text in, text out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from pipeline import yamlsafe
from pipeline.errors import ConfigError
from pipeline.gitops.records import Release

LEDGER_FILE = "ledger.yaml"
HEADER = (
    "# Written by ship: every release of this environment and what became of it, oldest first.\n"
)


class Outcome(str, Enum):
    """What became of a release in an environment."""

    PENDING = "pending"  # released, not yet gated
    CANARY = "canary"  # running as a canary beside the stable release
    HEALTHY = "healthy"  # passed its gates
    REJECTED = "rejected"  # failed its gates and was rolled back automatically; never promoted
    ROLLED_BACK = "rolled back"  # replaced by a manual rollback
    ROLLED_BACK_TO = "rolled back to"  # a rollback put it back; it runs and is healthy
    ROLLBACK_FAILED = "rollback failed"  # a rollback to it failed its own gates

    @property
    def runnable(self) -> bool:
        """A rollback may return to a release with this outcome."""
        return self in (Outcome.HEALTHY, Outcome.ROLLED_BACK_TO)

    @property
    def failed(self) -> bool:
        return self in (Outcome.REJECTED, Outcome.ROLLBACK_FAILED)


@dataclass(frozen=True)
class Entry:
    release: Release
    outcome: Outcome = Outcome.PENDING
    reason: str = ""
    updated_at: str = ""
    override: str = ""  # a control it went through: `freeze overridden by WHO: WHY (WHAT held)`

    def to_record(self) -> dict[str, Any]:
        out = self.release.record()
        out["config_data"] = dict(self.release.config_data)
        out.update(outcome=self.outcome.value, reason=self.reason, updated_at=self.updated_at)
        if self.override:
            out["override"] = self.override
        return out


@dataclass(frozen=True)
class Ledger:
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str | None, source: str = LEDGER_FILE) -> Ledger:
        if not text:
            return cls()
        data = yamlsafe.loads(text, source) or {}
        entries = []
        for rec in data.get("releases", []):
            rec = dict(rec)
            outcome, reason, updated = (
                rec.pop("outcome", "pending"),
                rec.pop("reason", ""),
                rec.pop("updated_at", ""),
            )
            override = rec.pop("override", "")
            try:
                outcome = Outcome(outcome)
            except ValueError:
                raise ConfigError(
                    f"{source}: release {rec.get('id')}: unknown outcome {outcome!r}"
                ) from None
            release = Release.from_record(rec)
            release = replace(release, config_data=dict(rec.get("config_data") or {}))
            entries.append(
                Entry(release, outcome, reason or "", updated or "", str(override or ""))
            )
        return cls(tuple(entries))

    def dumps(self) -> str:
        return HEADER + yamlsafe.dumps({"releases": [e.to_record() for e in self.entries]})

    def find(self, release_id: str) -> Entry | None:
        for e in reversed(self.entries):
            if e.release.id == release_id:
                return e
        return None

    def record(
        self, release: Release, outcome: Outcome, reason: str, at: str, override: str | None = None
    ) -> Ledger:
        """The ledger with `release` set to `outcome` (added when new, else updated in place);
        `override` (None: as it was) notes a control it went through."""
        entries = list(self.entries)
        for i in range(len(entries) - 1, -1, -1):
            if entries[i].release.id == release.id:
                entries[i] = Entry(
                    copy.copy(release)
                    if release.config_data
                    else replace(release, config_data=entries[i].release.config_data),
                    outcome,
                    reason,
                    at,
                    entries[i].override if override is None else override,
                )
                return Ledger(tuple(entries))
        return Ledger((*entries, Entry(release, outcome, reason, at, override or "")))

    def id_for(
        self, base_id: str, image: str, config_data: dict[str, str], chart_digest: str | None = None
    ) -> str:
        """The id a new release of `image` with `config_data` (and chart base) gets: `base_id`, or
        `base_id.N` when the ledger already holds another image, config or chart base under it
        (same commit, another release)."""
        rid, n = base_id, 1
        while (entry := self.find(rid)) is not None and (
            entry.release.image != image
            or dict(entry.release.config_data) != config_data
            or entry.release.chart_digest != chart_digest
        ):
            n += 1
            rid = f"{base_id}.{n}"
        return rid

    def last_runnable(self, excluding: str | None = None) -> Entry | None:
        """The newest release a rollback may return to (healthy, or rolled back to)."""
        for e in reversed(self.entries):
            if e.release.id != excluding and e.outcome.runnable:
                return e
        return None

    def is_rejected(self, release_id: str) -> bool:
        e = self.find(release_id)
        return e is not None and e.outcome == Outcome.REJECTED
