"""Tests for computing when a wodle runs next."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

import pytest

from aws_wodle.schedule import Daily, Interval, Monthly, Schedule, Weekly, first_run, next_run

UTC = timezone.utc
PARIS = timezone(timedelta(hours=2))  # a fixed offset, as datetime.now().astimezone() gives


def plain(seconds: int, run_on_start: bool = True) -> Schedule:
    """A plain interval schedule."""
    return Interval(seconds=seconds, run_on_start=run_on_start)


def daily(hour: int, minute: int, days: int = 1, run_on_start: bool = False) -> Schedule:
    """A time-of-day schedule every ``days`` days."""
    return Daily(at=time(hour, minute), every=days, run_on_start=run_on_start)


def weekly(wday: int, hour: int = 0, weeks: int = 1, run_on_start: bool = False) -> Schedule:
    """A weekday schedule every ``weeks`` weeks."""
    return Weekly(weekday=wday, at=time(hour, 0), every=weeks, run_on_start=run_on_start)


def monthly(day: int, months: int = 1, run_on_start: bool = False) -> Schedule:
    """A day-of-month schedule every ``months`` months at 00:00."""
    return Monthly(day=day, every=months, run_on_start=run_on_start)


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    second: int = 0,
    microsecond: int = 0,
    tz: timezone = UTC,
) -> datetime:
    """An aware datetime."""
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)


def test_run_on_start_runs_now() -> None:
    """With run_on_start, the first run is at once, whatever the schedule."""
    now = at(2024, 5, 10, 12, 0)
    for schedule in (plain(300), daily(3, 0, run_on_start=True), monthly(1, run_on_start=True)):
        assert first_run(schedule, now) == now


def test_plain_first_run_waits_one_interval() -> None:
    """Without run_on_start, a plain interval waits one interval."""
    now = at(2024, 5, 10, 12, 0)
    assert first_run(plain(300, run_on_start=False), now) == now + timedelta(minutes=5)


def test_plain_next_run_is_one_interval_after_start() -> None:
    """A plain interval counts from the start of the last run."""
    start = at(2024, 5, 10, 12, 0)
    assert next_run(plain(300), start, start + timedelta(seconds=40)) == at(2024, 5, 10, 12, 5)


def test_plain_next_run_does_not_catch_up() -> None:
    """A run that overran its interval is followed at once, not by a burst of catch-up runs."""
    start = at(2024, 5, 10, 12, 0)
    now = start + timedelta(hours=3)
    assert next_run(plain(300), start, now) == now


def test_time_first_run_is_next_matching_time() -> None:
    """Without run_on_start, a time schedule waits for the next hh:mm, today or tomorrow."""
    assert first_run(daily(3, 0), at(2024, 5, 10, 2, 0)) == at(2024, 5, 10, 3, 0)
    assert first_run(daily(3, 0), at(2024, 5, 10, 3, 0)) == at(2024, 5, 11, 3, 0)
    assert first_run(daily(3, 0), at(2024, 5, 10, 4, 0)) == at(2024, 5, 11, 3, 0)


def test_time_uses_the_zone_of_now() -> None:
    """Wall-clock times are read in the time zone of ``now``."""
    now = at(2024, 5, 10, 2, 0, tz=PARIS)
    assert first_run(daily(3, 0), now) == at(2024, 5, 10, 3, 0, tz=PARIS)
    last = at(2024, 5, 10, 1, 0)  # 03:00 in PARIS, given in UTC
    assert next_run(daily(3, 0), last, now.replace(hour=3, minute=5)) == at(
        2024, 5, 11, 3, 0, tz=PARIS
    )


def test_daily_next_run() -> None:
    """A daily schedule runs at the same time the next day."""
    last = at(2024, 5, 10, 3, 0, second=0, microsecond=5000)
    assert next_run(daily(3, 0), last, last + timedelta(minutes=20)) == at(2024, 5, 11, 3, 0)


def test_every_n_days_steps_from_the_first_slot() -> None:
    """Every 3 days: three days after the slot that was run."""
    last = at(2024, 5, 10, 3, 0)
    assert next_run(daily(3, 0, days=3), last, last) == at(2024, 5, 13, 3, 0)


def test_after_a_start_run_the_cadence_begins_at_the_next_slot() -> None:
    """A run at start is followed by the first slot after it (plus the remaining days)."""
    start = at(2024, 5, 10, 10, 0)
    assert next_run(daily(3, 0, run_on_start=True), start, start) == at(2024, 5, 11, 3, 0)
    assert next_run(daily(3, 0, days=2, run_on_start=True), start, start) == at(2024, 5, 12, 3, 0)


def test_early_start_counts_as_the_slot() -> None:
    """A run that began a few seconds before its slot is not repeated at the slot."""
    last = at(2024, 5, 10, 2, 59, second=58)
    assert next_run(daily(3, 0), last, last) == at(2024, 5, 11, 3, 0)


def test_fixed_time_catch_up_goes_to_the_next_slot_after_now() -> None:
    """After missed slots, the next run is the first slot of the cadence not before now."""
    last = at(2024, 5, 10, 3, 0)
    now = at(2024, 5, 20, 12, 0)
    assert next_run(daily(3, 0), last, now) == at(2024, 5, 21, 3, 0)
    assert next_run(daily(3, 0, days=4), last, now) == at(2024, 5, 22, 3, 0)


def test_weekly_first_and_next_run() -> None:
    """A weekday schedule runs on that weekday; every N weeks steps N weeks."""
    friday = at(2024, 5, 10, 12, 0)
    assert first_run(weekly(0, 6), friday) == at(2024, 5, 13, 6, 0)
    assert first_run(weekly(4, 13), friday) == at(2024, 5, 10, 13, 0)
    assert first_run(weekly(4, 11), friday) == at(2024, 5, 17, 11, 0)
    monday = at(2024, 5, 13, 6, 0)
    assert next_run(weekly(0, 6), monday, monday) == at(2024, 5, 20, 6, 0)
    assert next_run(weekly(0, 6, weeks=2), monday, monday) == at(2024, 5, 27, 6, 0)


def test_weekly_catch_up() -> None:
    """A weekday schedule resumes at the first slot of its cadence after now."""
    monday = at(2024, 5, 13, 6, 0)
    now = at(2024, 6, 5, 0, 0)
    assert next_run(weekly(0, 6, weeks=2), monday, now) == at(2024, 6, 10, 6, 0)


def test_monthly_first_and_next_run() -> None:
    """A day-of-month schedule runs on that day; every N months steps N months."""
    assert first_run(monthly(15), at(2024, 5, 10, 12, 0)) == at(2024, 5, 15)
    assert first_run(monthly(5), at(2024, 5, 10, 12, 0)) == at(2024, 6, 5)
    last = at(2024, 5, 15)
    assert next_run(monthly(15), last, last) == at(2024, 6, 15)
    assert next_run(monthly(15, months=3), last, last) == at(2024, 8, 15)


def test_monthly_across_the_year_end() -> None:
    """Months roll over into the next year."""
    last = at(2024, 11, 1)
    assert next_run(monthly(1, months=3), last, last) == at(2025, 2, 1)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (at(2024, 1, 31), at(2024, 2, 29)),
        (at(2024, 2, 29), at(2024, 3, 31)),
        (at(2024, 3, 31), at(2024, 4, 30)),
        (at(2024, 4, 30), at(2024, 5, 31)),
        (at(2023, 1, 31), at(2023, 2, 28)),
    ],
)
def test_month_day_is_clamped(last: datetime, expected: datetime) -> None:
    """Day 31 falls on the last day of shorter months, and returns to 31 after them."""
    assert next_run(monthly(31), last, last) == expected


def test_month_clamping_with_a_step() -> None:
    """Stepping several months from a clamped day keeps the configured day."""
    last = at(2024, 2, 29)
    assert next_run(monthly(31, months=2), last, last) == at(2024, 4, 30)
    assert next_run(monthly(31, months=3), last, last) == at(2024, 5, 31)


def test_monthly_catch_up() -> None:
    """A monthly schedule resumes at the first slot of its cadence after now."""
    last = at(2024, 1, 31)
    assert next_run(monthly(31), last, at(2024, 6, 10)) == at(2024, 6, 30)
    assert next_run(monthly(31, months=2), last, at(2024, 6, 10)) == at(2024, 7, 31)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Interval(seconds=0), "an interval's seconds must be positive, got: 0"),
        (lambda: Daily(every=-1), "between runs must be positive, got: -1"),
        (lambda: Daily(at=time(3, 0, 30)), "hours and minutes, got: 03:00:30"),
        (lambda: Weekly(weekday=7), "weekday must be 0 (Monday) to 6 (Sunday), got: 7"),
        (lambda: Monthly(day=32), "day must be 1 to 31, got: 32"),
    ],
)
def test_each_kind_refuses_a_value_it_cannot_run(build: object, message: str) -> None:
    """A schedule that cannot be computed is refused when built, naming the bad value."""
    assert callable(build)
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_one_frozen_type_per_kind() -> None:
    """Each kind is its own frozen type, and Schedule is exactly their union."""
    kinds: tuple[Schedule, ...] = (
        plain(60),
        daily(1, 0),
        weekly(0),
        monthly(1),
    )
    assert [type(kind).__name__ for kind in kinds] == ["Interval", "Daily", "Weekly", "Monthly"]
    with pytest.raises(AttributeError):
        kinds[0].seconds = 5  # type: ignore[misc,union-attr]
