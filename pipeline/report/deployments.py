"""Deployments and recoveries, replayed from ship's events. Pure: events in, records out.

    events (oldest first) ─► per environment and app:
        Deployment  a release going into the environment: when its change was committed, when it
                    went out, when it ran healthy, and whether it failed (rejected by a gate,
                    rolled back, or its canary aborted)
        Recovery    from a failed deployment going out to the environment healthy again

The rules, per (environment, app), in commit order:

- `release`, `promote` and the first `canary` step of a release start a deployment; later canary
  steps (and a hold) move its `changed` time, the moment its current form went out;
- `record healthy` and `promote` after a canary make the open deployment healthy and close every
  open recovery (the environment runs a healthy release again);
- `record rejected` (a failed gate with nothing to roll back to) fails it and opens a recovery;
- `abort` fails the canary's deployment; the stable release never stopped, so its recovery
  closes at the abort;
- `rollback` fails the release it replaced (`rejected` after a failed gate, `rolled back` by a
  person) and, when the rollback's own gate passed, closes every open recovery.

A recovery runs from the failed deployment's `changed` time (when the failing change went out),
as DORA's Four Keys measure time to restore from the deployment that caused the failure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from pipeline.gitops.ledger import Outcome
from pipeline.report.events import Event, iso

REJECTED, ROLLED_BACK, ABORTED = "rejected", "rolled back", "aborted"
_RELEASE_ID = re.compile(r"^r(\d{8}-\d{6})-")


@dataclass
class Deployment:
    environment: str
    app: str
    release: str
    sha: str  # the commit that started it
    committed: dt.datetime | None  # when its source change was committed (None: unknown)
    started: dt.datetime  # when it first went out
    changed: dt.datetime  # when its current form went out (a canary's latest step)
    canary: bool = False
    healthy_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    failure: str = ""  # rejected | rolled back | aborted

    @property
    def decided(self) -> dt.datetime | None:
        """When it first succeeded or failed: the time it counts at."""
        return self.healthy_at or self.failed_at

    @property
    def lead_time(self) -> float | None:
        """Seconds from its source commit to running healthy in the environment."""
        if self.healthy_at is None or self.committed is None:
            return None
        return max(0.0, (self.healthy_at - self.committed).total_seconds())

    @property
    def result(self) -> str:
        return self.failure or ("healthy" if self.healthy_at else "in progress")

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "app": self.app,
            "release": self.release,
            "commit": self.sha,
            "started": iso(self.started),
            "result": self.result,
            "lead_time": self.lead_time,
            "healthy_at": iso(self.healthy_at) if self.healthy_at else None,
            "failed_at": iso(self.failed_at) if self.failed_at else None,
        }


@dataclass
class Recovery:
    environment: str
    app: str
    release: str  # the failed one
    failure: str
    started: dt.datetime  # the failed deployment went out
    restored: dt.datetime | None = None
    sha: str = ""  # the commit that restored it

    @property
    def duration(self) -> float | None:
        return (
            None
            if self.restored is None
            else max(0.0, (self.restored - self.started).total_seconds())
        )

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "app": self.app,
            "release": self.release,
            "failure": self.failure,
            "started": iso(self.started),
            "restored": iso(self.restored) if self.restored else None,
            "duration": self.duration,
            "commit": self.sha or None,
        }


@dataclass
class _Lane:
    """One environment and app as the replay goes."""

    open: dict[str, Deployment] = field(default_factory=dict)  # started, not yet decided
    # the latest deployment of each release
    last: dict[str, Deployment] = field(default_factory=dict)
    down: list[Recovery] = field(default_factory=list)  # failures not yet restored


@dataclass
class History:
    deployments: list[Deployment]
    recoveries: list[Recovery]


def commit_time(release_id: str) -> dt.datetime | None:
    """The source commit's time, which ship puts in every release id (r<YYYYMMDD-HHMMSS>-<sha>)."""
    match = _RELEASE_ID.match(release_id)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)


def replay(events: list[Event]) -> History:
    lanes: dict[tuple[str, str], _Lane] = {}
    history = History([], [])
    for e in events:
        lane = lanes.setdefault((e.environment, e.app), _Lane())
        if e.action in ("release", "promote", "canary"):
            _went_out(lane, e, history)
        elif e.action == "record" and e.outcome == Outcome.HEALTHY.value:
            _healthy(lane, lane.open.pop(e.release, None), e)
        elif e.action == "record" and e.outcome == Outcome.REJECTED.value:
            _fail(
                lane,
                lane.open.pop(e.release, None) or lane.last.get(e.release),
                REJECTED,
                e,
                history,
            )
        elif e.action == "abort":
            _fail(
                lane,
                lane.open.pop(e.release, None) or lane.last.get(e.release),
                ABORTED,
                e,
                history,
            )
            _restore(lane, e)  # the stable release ran all along
        elif e.action == "rollback":
            if e.replaced:
                kind = REJECTED if e.replaced_outcome == Outcome.REJECTED.value else ROLLED_BACK
                _fail(
                    lane,
                    lane.open.pop(e.replaced, None) or lane.last.get(e.replaced),
                    kind,
                    e,
                    history,
                )
            if e.outcome != Outcome.ROLLBACK_FAILED.value:
                _restore(lane, e)
    return history


def _went_out(lane: _Lane, e: Event, history: History) -> None:
    current = lane.open.get(e.release)
    if current is not None:
        if e.action == "promote" and current.canary:
            _healthy(lane, lane.open.pop(e.release), e)  # the canary passed; the stable moved to it
        else:
            current.changed = e.time
        return
    d = Deployment(
        e.environment,
        e.app,
        e.release,
        e.sha,
        commit_time(e.release),
        e.time,
        e.time,
        canary=e.action == "canary",
    )
    lane.open[e.release] = lane.last[e.release] = d
    history.deployments.append(d)


def _healthy(lane: _Lane, d: Deployment | None, e: Event) -> None:
    if d is None:
        return
    d.healthy_at = e.time
    _restore(lane, e)


def _fail(lane: _Lane, d: Deployment | None, kind: str, e: Event, history: History) -> None:
    if d is None or d.failure:
        return
    d.failure, d.failed_at = kind, e.time
    recovery = Recovery(d.environment, d.app, d.release, kind, d.changed)
    lane.down.append(recovery)
    history.recoveries.append(recovery)


def _restore(lane: _Lane, e: Event) -> None:
    for recovery in lane.down:
        recovery.restored, recovery.sha = e.time, e.sha
    lane.down.clear()
