"""DORA's four keys from ship's history, per environment and app, over a window and over time.

    deployment frequency   deployments that ran healthy in the window (per day and per week)
    lead time              source commit → running healthy in the environment (median, p90)
    change failure rate    failed deployments / decided deployments (failed: rejected by a gate,
                           rolled back, or an aborted canary)
    time to restore        a failed deployment going out → the environment healthy again
                           (median, p90)

A deployment counts at the moment it was decided (healthy or failed), a recovery at the moment
it was restored. Percentiles are nearest-rank: p90 of ten values is the ninth smallest. Pure.
Definitions: DORA's guide (dora.dev/guides/dora-metrics-four-keys) and the Four Keys project's
METRICS.md (github.com/dora-team/fourkeys); README, "Metrics".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from pipeline.errors import ConfigError
from pipeline.report.deployments import Deployment, History, Recovery

_SPAN = re.compile(r"^(\d+)([hdw])$")
DAY = 86400.0


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def days(self) -> float:
        return max((self.end - self.start).total_seconds() / DAY, 1 / 24)

    def holds(self, t: dt.datetime | None) -> bool:
        return t is not None and self.start <= t <= self.end


def window(since: str, now: dt.datetime) -> Window:
    """`30d`, `12w`, `48h`, or a date (`2026-10-01`) up to now."""
    text = since.strip()
    match = _SPAN.match(text)
    if match:
        hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2)]
        return Window(now - dt.timedelta(hours=hours), now)
    try:
        start = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {since!r}: expected a span such as "
            "30d, 12w or 48h, or a date such as 2026-10-01"
        ) from None
    return Window(start if start.tzinfo else start.replace(tzinfo=dt.UTC), now)


def median(values: list[float]) -> float | None:
    return percentile(values, 50)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Figures:
    """The four keys for one environment (and app) in one window."""

    deployments: int  # ran healthy
    decided: int  # ran healthy or failed
    failed: int
    days: float
    lead_times: tuple[float, ...]  # seconds
    restore_times: tuple[float, ...]  # seconds
    failing_since: dt.datetime | None = None  # a failure not restored by the window's end

    @property
    def per_day(self) -> float:
        return self.deployments / self.days

    @property
    def change_failure_rate(self) -> float | None:
        return self.failed / self.decided if self.decided else None

    def to_json(self) -> dict[str, object]:
        lead, restore = list(self.lead_times), list(self.restore_times)
        return {
            "deployments": self.deployments,
            "per_day": round(self.per_day, 3),
            "per_week": round(self.per_day * 7, 2),
            "lead_time": {"median": median(lead), "p90": percentile(lead, 90), "count": len(lead)},
            "change_failure_rate": None
            if self.change_failure_rate is None
            else round(self.change_failure_rate, 4),
            "failed": self.failed,
            "decided": self.decided,
            "time_to_restore": {
                "median": median(restore),
                "p90": percentile(restore, 90),
                "count": len(restore),
            },
            "failing_since": self.failing_since.strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.failing_since
            else None,
        }


def figures(
    history: History, win: Window, environment: str | None = None, app: str | None = None
) -> Figures:
    deps = [d for d in _select(history.deployments, environment, app) if win.holds(d.decided)]
    recs = _select(history.recoveries, environment, app)
    healthy = [d for d in deps if d.healthy_at is not None]
    open_at_end = [
        r for r in recs if r.started <= win.end and (r.restored is None or r.restored > win.end)
    ]
    return Figures(
        deployments=len(healthy),
        decided=len(deps),
        failed=sum(1 for d in deps if d.failure),
        days=win.days,
        lead_times=tuple(t for d in healthy if (t := d.lead_time) is not None),
        restore_times=tuple(
            t for r in recs if win.holds(r.restored) and (t := r.duration) is not None
        ),
        failing_since=min((r.started for r in open_at_end), default=None),
    )


_T = TypeVar("_T", Deployment, Recovery)


def _select(items: Iterable[_T], environment: str | None, app: str | None) -> list[_T]:
    return [
        i
        for i in items
        if (environment is None or i.environment == environment) and (app is None or i.app == app)
    ]


def buckets(win: Window) -> list[Window]:
    """The window cut into days (up to 31 days) or weeks, oldest first; the last may be shorter."""
    size = dt.timedelta(days=1 if win.days <= 31 else 7)
    out, start = [], win.start
    while start < win.end:
        out.append(Window(start, min(start + size, win.end)))
        start += size
    return out


@dataclass(frozen=True)
class Series:
    """One environment's four keys bucket by bucket (None where a bucket has nothing to measure)."""

    environment: str
    deployments: list[int]
    lead_time: list[float | None]  # median seconds
    change_failure_rate: list[float | None]  # 0..1
    time_to_restore: list[float | None]  # median seconds


def series(history: History, win: Window, environment: str) -> Series:
    cuts = [figures(history, b, environment) for b in _half_open(buckets(win))]
    return Series(
        environment,
        [f.deployments for f in cuts],
        [median(list(f.lead_times)) for f in cuts],
        [f.change_failure_rate for f in cuts],
        [median(list(f.restore_times)) for f in cuts],
    )


def _half_open(cuts: list[Window]) -> list[Window]:
    # Window.holds is inclusive at both ends; a moment on a boundary belongs to the later bucket.
    tick = dt.timedelta(microseconds=1)
    return [
        Window(c.start, c.end - tick if i < len(cuts) - 1 else c.end) for i, c in enumerate(cuts)
    ]


def duration_text(seconds: float | None) -> str:
    """`45s`, `12m`, `3h 5m`, `2d 4h`; `-` for none."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f" {s % 60}s" if s % 60 and s < 600 else "")
    if s < DAY:
        return f"{s // 3600}h" + (f" {s % 3600 // 60}m" if s % 3600 // 60 else "")
    return f"{s // 86400}d" + (f" {s % 86400 // 3600}h" if s % 86400 // 3600 else "")


def rate_text(f: Figures) -> str:
    if f.change_failure_rate is None:
        return "-"
    return f"{f.change_failure_rate:.0%} ({f.failed} of {f.decided})"


def frequency_text(f: Figures) -> str:
    per_week = f.per_day * 7
    return f"{f.per_day:.1f}/day" if f.per_day >= 1 else f"{per_week:.1f}/week"


def headline(f: Figures) -> str:
    """One line: `6 deployments (1.4/week), lead time 2h (p90 1d), 25% failed (2 of 8), restored in
    4m`."""
    lead, restore = list(f.lead_times), list(f.restore_times)
    parts = [f"{f.deployments} deployment{'s' if f.deployments != 1 else ''} ({frequency_text(f)})"]
    if lead:
        parts.append(
            f"lead time {duration_text(median(lead))} (p90 {duration_text(percentile(lead, 90))})"
        )
    if f.decided:
        parts.append(f"{rate_text(f)} failed")
    if restore:
        parts.append(f"restored in {duration_text(median(restore))} (median)")
    if f.failing_since:
        parts.append("failing now")
    return ", ".join(parts)
