"""Time as a dependency: gates, bakes, locks and ledger timestamps read it from here, so tests
can pass a clock of their own that they move by hand instead of waiting (tests/report/story.py).
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
