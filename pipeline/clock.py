"""Time as a dependency: gates, bakes, locks and ledger timestamps read it from here, so tests
can pass a clock that they move by hand instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds for measuring intervals (never goes backwards)."""
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def iso(self) -> str:
        """Now as ship writes it into ledgers and records: 2026-11-26T05:33:07Z."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock(Clock):
    """A clock that moves only when told to (or when something sleeps on it): for tests."""

    def __init__(self, start: dt.datetime | None = None):
        self._now = start or dt.datetime(2026, 11, 24, 21, 44, 56, tzinfo=dt.UTC)
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._now += dt.timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
