"""Freeze windows decided at fixed moments: weekly and dated, in several time zones, at their
edges (start included, end excluded) and across daylight-saving changes."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.config.windows import WeekTime, active, make_window, next_start, occurrence


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def holds(window, moment: str) -> bool:
    now = utc(moment)
    return occurrence(window, now).holds(now)


WEEKEND = make_window("weekend", "Fri 16:00", "Mon 08:00", "Europe/Berlin")


@pytest.mark.parametrize("moment, frozen", [
    ("2026-11-27T14:59:59", False),  # Fri 15:59:59 CET
    ("2026-11-27T15:00:00", True),  # Fri 16:00 CET: the start is included
    ("2026-11-29T12:00:00", True),
    ("2026-11-30T06:59:59", True),
    ("2026-11-30T07:00:00", False),  # Mon 08:00 CET: the end is excluded
    ("2026-11-25T12:00:00", False),  # a Wednesday
])
def test_weekly_window_in_berlin_winter(moment, frozen):
    assert holds(WEEKEND, moment) is frozen


@pytest.mark.parametrize("moment, frozen", [
    ("2026-07-03T13:59:59", False),  # summer: Fri 16:00 CEST is 14:00 UTC
    ("2026-07-03T14:00:00", True),
    ("2026-07-06T05:59:59", True),
    ("2026-07-06T06:00:00", False),
])
def test_weekly_window_in_berlin_summer_follows_the_wall_clock(moment, frozen):
    assert holds(WEEKEND, moment) is frozen


@pytest.mark.parametrize("moment, frozen", [
    ("2026-11-27T21:59:59", False),  # Fri 16:59:59 EST
    ("2026-11-27T22:00:00", True),  # Fri 17:00 EST
    ("2026-11-30T13:59:59", True),
    ("2026-11-30T14:00:00", False),  # Mon 09:00 EST
])
def test_a_window_in_another_time_zone_is_honoured_at_its_edges(moment, frozen):
    new_york = make_window("us-weekend", "Friday 17:00", "Mon 09:00", "America/New_York")
    assert holds(new_york, moment) is frozen


def test_a_window_across_the_spring_forward_ends_by_the_wall_clock():
    night = make_window("night", "Sat 22:00", "Sun 06:00", "Europe/Berlin")  # 2026-03-29: 02:00 CET → 03:00 CEST
    assert holds(night, "2026-03-28T21:00:00")  # Sat 22:00 CET
    assert holds(night, "2026-03-29T03:59:59")
    assert not holds(night, "2026-03-29T04:00:00")  # Sun 06:00 CEST: seven hours later, not eight
    assert occurrence(night, utc("2026-03-29T01:00:00")).until == utc("2026-03-29T04:00:00")


def test_a_window_across_the_fall_back_ends_by_the_wall_clock():
    night = make_window("night", "Sat 22:00", "Sun 06:00", "Europe/Berlin")  # 2026-10-25: 03:00 CEST → 02:00 CET
    assert holds(night, "2026-10-24T20:00:00")  # Sat 22:00 CEST
    assert holds(night, "2026-10-25T04:59:59")
    assert not holds(night, "2026-10-25T05:00:00")  # Sun 06:00 CET: nine hours later


def test_a_start_the_clocks_skip_begins_at_the_jump():
    gap = make_window("gap", "Sun 02:30", "Sun 04:00", "Europe/Berlin")
    assert not holds(gap, "2026-03-29T00:59:59")  # 01:59:59 CET
    assert holds(gap, "2026-03-29T01:00:00")  # the clock jumps to 03:00 CEST, past 02:30
    assert occurrence(gap, utc("2026-03-29T01:30:00")).since == utc("2026-03-29T01:00:00")


def test_a_weekly_window_wraps_the_week():
    overnight = make_window("overnight", "Sun 22:00", "Mon 02:00", "UTC")
    assert holds(overnight, "2026-11-29T22:00:00") and holds(overnight, "2026-11-30T01:59:59")
    assert not holds(overnight, "2026-11-30T02:00:00") and not holds(overnight, "2026-11-29T21:59:59")


@pytest.mark.parametrize("moment, frozen", [
    ("2026-12-19T22:59:59", False),
    ("2026-12-19T23:00:00", True),  # 2026-12-20 00:00 CET
    ("2027-01-04T22:59:59", True),  # the last day is included …
    ("2027-01-04T23:00:00", False),  # … until 2027-01-05 00:00 CET
])
def test_a_dated_window_includes_its_last_day(moment, frozen):
    year_end = make_window("year-end", dt.date(2026, 12, 20), dt.date(2027, 1, 4), "Europe/Berlin")
    assert holds(year_end, moment) is frozen


def test_a_dated_window_with_times_in_tokyo():
    launch = make_window("launch", "2026-12-31 18:00", "2027-01-01T09:00", "Asia/Tokyo")
    assert not holds(launch, "2026-12-31T08:59:59") and holds(launch, "2026-12-31T09:00:00")
    assert holds(launch, "2026-12-31T23:59:59") and not holds(launch, "2027-01-01T00:00:00")


def test_next_start_and_active_order():
    now = utc("2026-11-25T12:00:00")
    assert next_start(WEEKEND, now) == utc("2026-11-27T15:00:00")
    year_end = make_window("year-end", dt.date(2026, 12, 20), dt.date(2027, 1, 4), "Europe/Berlin")
    assert next_start(year_end, now) == utc("2026-12-19T23:00:00")
    assert next_start(year_end, utc("2027-02-01T00:00:00")) is None
    sunday_in_the_holidays = utc("2026-12-27T12:00:00")
    assert [o.window.name for o in active([WEEKEND, year_end], sunday_in_the_holidays)] == ["year-end", "weekend"]
    assert active([WEEKEND, year_end], now) == []


def test_windows_describe_themselves_as_written():
    assert WEEKEND.describe() == "window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)"
    assert WEEKEND.start == WeekTime(4, 16, 0) and str(WEEKEND.end) == "Mon 08:00"


@pytest.mark.parametrize("start, end, zone, problem", [
    ("Fri 16:00", "Fri 16:00", "UTC", "start and end differ"),
    ("Fri 25:00", "Mon 08:00", "UTC", "a time of day from 00:00 to 23:59"),
    ("Fri 16:00", dt.date(2026, 12, 20), "UTC", "not one of each"),
    (dt.date(2027, 1, 4), dt.date(2026, 12, 20), "UTC", "an end after the start"),
    ("2026-02-30", "2026-03-02", "UTC", "a real date"),
    ("Fri 16:00", "Mon 08:00", "Mars/Olympus", "an IANA time zone"),
    (dt.datetime(2026, 12, 20, 8, 0, tzinfo=dt.UTC), dt.date(2026, 12, 21), "UTC", "without an offset"),
])
def test_bad_windows_say_what_is_wrong(start, end, zone, problem):
    with pytest.raises(ValueError, match=problem):
        make_window("w", start, end, zone)
