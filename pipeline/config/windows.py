"""Freeze windows: when an environment refuses releases and promotions. Pure.

A window is weekly (`from: "Fri 16:00"`, `to: "Mon 08:00"`, wrapping the week end) or dated
(`from: 2026-12-20`, `to: 2027-01-04`; a `to` given as a day includes that day), always in a
time zone, read as wall-clock time there: "Fri 16:00 Europe/Berlin" is 15:00 UTC in winter and
14:00 UTC in summer. A window holds from its start (included) to its end (excluded). A wall
time that a DST jump skips starts or ends the window at the jump; one that occurs twice, at
its first occurrence. Nothing here reads a clock: the caller passes the moment to decide at.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK = 7 * 86400
_WEEKLY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+(\d{1,2}):(\d{2})$", re.I)
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}):(\d{2}))?$")


@dataclass(frozen=True)
class WeekTime:
    """A wall-clock moment of every week: a weekday (0 = Monday) and a time of day."""

    day: int
    hour: int
    minute: int

    @property
    def seconds(self) -> int:
        """Seconds since Monday 00:00."""
        return self.day * 86400 + self.hour * 3600 + self.minute * 60

    def __str__(self) -> str:
        return f"{DAYS[self.day]} {self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True)
class FreezeWindow:
    """A named window, weekly (WeekTime bounds) or dated (naive wall-clock datetimes), in a zone."""

    name: str
    start: WeekTime | dt.datetime
    end: WeekTime | dt.datetime  # excluded
    timezone: str = "UTC"
    spec: str = ""  # the bounds as ship.yaml gives them, for messages

    @property
    def weekly(self) -> bool:
        return isinstance(self.start, WeekTime)

    def describe(self) -> str:
        """`window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)`."""
        return f"window {self.name!r} ({self.spec or f'{self.start} – {self.end}'} {self.timezone})"


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a window on the time line: the latest that started at or before a moment
    (or, for a dated window not started yet, its only one)."""

    window: FreezeWindow
    since: dt.datetime  # UTC
    until: dt.datetime  # UTC, excluded

    def holds(self, now: dt.datetime) -> bool:
        return self.since <= now < self.until


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"an IANA time zone such as Europe/Berlin or UTC (not {name!r})") from None


def parse_bound(value: object, *, is_end: bool) -> WeekTime | dt.datetime:
    """A window bound from ship.yaml: `Fri 16:00`, a date (YAML's or `2026-12-20`), or a date and
    time (`2026-12-20 18:00`). A date alone as an end means the end of that day."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError("a time without an offset (give the zone as `timezone:`)")
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()) + (
            dt.timedelta(days=1) if is_end else dt.timedelta()
        )
    text = str(value).strip()
    weekly = _WEEKLY.match(text)
    if weekly:
        day = [d.lower() for d in DAYS].index(weekly.group(1).lower())
        hour, minute = int(weekly.group(2)), int(weekly.group(3))
        if hour > 23 or minute > 59:
            raise ValueError(f"a time of day from 00:00 to 23:59 (not {text!r})")
        return WeekTime(day, hour, minute)
    dated = _DATED.match(text)
    if dated:
        try:
            day_start = dt.datetime.fromisoformat(dated.group(1))
            if dated.group(2) is None:
                return day_start + (dt.timedelta(days=1) if is_end else dt.timedelta())
            return day_start.replace(hour=int(dated.group(2)), minute=int(dated.group(3)))
        except ValueError:
            raise ValueError(f"a real date and time (not {text!r})") from None
    raise ValueError(
        f"a weekday and time such as 'Fri 16:00', or a date such as 2026-12-20 (not {text!r})"
    )


def make_window(name: str, start: object, end: object, timezone: str = "UTC") -> FreezeWindow:
    """A window from ship.yaml's values; ValueError saying what is wrong."""
    zone(timezone)
    first, last = parse_bound(start, is_end=False), parse_bound(end, is_end=True)
    if isinstance(first, WeekTime) != isinstance(last, WeekTime):
        raise ValueError(
            "both bounds weekly ('Fri 16:00') or both dated (2026-12-20), not one of each"
        )
    if isinstance(first, WeekTime) and first == last:
        raise ValueError("a weekly window whose start and end differ")
    if isinstance(first, dt.datetime) and isinstance(last, dt.datetime) and first >= last:
        raise ValueError("an end after the start")
    return FreezeWindow(name, first, last, timezone, f"{_text(start)} – {_text(end)}")


def _text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return value.isoformat() if isinstance(value, dt.date) else str(value).strip()


def _wall(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def instant(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first moment (UTC) whose wall-clock time in `tz` is `wall` or later: `wall` itself, its
    first occurrence when clocks fall back, or the jump when clocks spring forward over it."""
    early = wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    if _wall(early, tz) == wall:
        return early
    # In a gap: fold=1 reads it with the offset after the jump, an instant before the jump.
    lo = int(wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC).timestamp())
    hi = int(early.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(dt.datetime.fromtimestamp(mid, dt.UTC), tz) >= wall:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, dt.UTC)


def _week_walls(
    window: FreezeWindow, now: dt.datetime, tz: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The wall-clock start and end of a weekly window's latest start at or before `now`."""
    assert isinstance(window.start, WeekTime) and isinstance(window.end, WeekTime)
    wall = _wall(now, tz).replace(microsecond=0)
    into_week = wall.weekday() * 86400 + wall.hour * 3600 + wall.minute * 60 + wall.second
    start = wall - dt.timedelta(seconds=(into_week - window.start.seconds) % WEEK)
    return start, start + dt.timedelta(seconds=(window.end.seconds - window.start.seconds) % WEEK)


def occurrence(window: FreezeWindow, now: dt.datetime) -> Occurrence:
    """The window's latest occurrence starting at or before `now` (a dated window: its only one)."""
    tz = zone(window.timezone)
    if isinstance(window.start, dt.datetime) and isinstance(window.end, dt.datetime):
        return Occurrence(window, instant(window.start, tz), instant(window.end, tz))
    start, end = _week_walls(window, now, tz)
    return Occurrence(window, instant(start, tz), instant(end, tz))


def next_start(window: FreezeWindow, now: dt.datetime) -> dt.datetime | None:
    """When the window next begins after `now` (UTC); None for a dated window already begun."""
    tz = zone(window.timezone)
    if isinstance(window.start, dt.datetime):
        since = instant(window.start, tz)
        return since if since > now else None
    start, _ = _week_walls(window, now, tz)
    return instant(start + dt.timedelta(days=7), tz)


def active(
    windows: tuple[FreezeWindow, ...] | list[FreezeWindow], now: dt.datetime
) -> list[Occurrence]:
    """The windows holding at `now`, the one that lasts longest first."""
    held = [o for o in (occurrence(w, now) for w in windows) if o.holds(now)]
    return sorted(held, key=lambda o: o.until, reverse=True)
