"""When a wodle runs next: pure functions of a Schedule and the times handed in."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, tzinfo

from aws_wodle.config import Schedule

# A run that starts up to this long before its slot (a timer that fires a little early, a
# clock that was stepped) counts as that slot's run, so the slot is not run twice. Slots are
# at least one day apart, so this cannot skip a slot.
EARLY_START_GRACE = timedelta(minutes=1)

_DAY_SECONDS = 86400
_WEEK_SECONDS = 604800


def first_run(schedule: Schedule, now: datetime) -> datetime:
    """When the first run happens after a start at ``now``.

    - ``run_on_start``: at once (``now``).
    - A plain interval: one interval after ``now``.
    - A fixed time (``day``, ``wday`` or ``time``): the first matching wall-clock time strictly
      after ``now``, in the time zone of ``now``.
    """
    if schedule.run_on_start:
        return now
    if not _is_fixed(schedule):
        return now + timedelta(seconds=_plain_seconds(schedule))
    return _first_slot_after(schedule, now, now.tzinfo)


def next_run(schedule: Schedule, last_start: datetime, now: datetime) -> datetime:
    """When the run after the one that started at ``last_start`` happens, seen at ``now``.

    - A plain interval: ``last_start`` plus the interval; if that moment has already passed,
      ``now``. Missed runs are never caught up in a burst: one run stands for all of them.
    - A fixed time, interval of N days (``time``), N weeks (``wday``) or N months (``day``):
      take the first matching slot strictly after ``last_start`` (a start up to
      ``EARLY_START_GRACE`` early counts as the slot's own run), then step N-1 intervals from
      it, so that runs are N days, weeks or months apart. If that slot has already passed,
      keep stepping by N intervals to the first slot not before ``now``.
    - Wall-clock times are read in the time zone of ``now``; ``day`` 29-31 falls on the last day
      of shorter months (31 runs on 30 April, 28 or 29 February).
    """
    if not _is_fixed(schedule):
        due = last_start + timedelta(seconds=_plain_seconds(schedule))
        return due if due >= now else now
    zone = now.tzinfo
    slot = _first_slot_after(schedule, last_start.astimezone(zone) + EARLY_START_GRACE, zone)
    steps = _steps(schedule)
    slot = _advance(schedule, slot, steps - 1)
    while slot < now:
        slot = _advance(schedule, slot, steps)
    return slot


def _is_fixed(schedule: Schedule) -> bool:
    return schedule.day is not None or schedule.wday is not None or schedule.time is not None


def _plain_seconds(schedule: Schedule) -> int:
    if schedule.interval_seconds is None or schedule.interval_seconds <= 0:
        raise ValueError("a plain interval schedule needs interval_seconds > 0")
    return schedule.interval_seconds


def _steps(schedule: Schedule) -> int:
    """How many slots (days, weeks or months) one interval spans."""
    if schedule.day is not None:
        return max(schedule.interval_months or 1, 1)
    unit = _WEEK_SECONDS if schedule.wday is not None else _DAY_SECONDS
    return max((schedule.interval_seconds or unit) // unit, 1)


def _at(schedule: Schedule, day: date, zone: tzinfo | None) -> datetime:
    hour, minute = schedule.time or (0, 0)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def _month_day(year: int, month: int, day: int) -> date:
    """``day`` of the month, or the month's last day when the month is shorter."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _first_slot_after(schedule: Schedule, moment: datetime, zone: tzinfo | None) -> datetime:
    """The first matching wall-clock time strictly after ``moment``, in ``zone``."""
    local = moment.astimezone(zone) if zone is not None else moment
    today = local.date()
    if schedule.day is not None:
        slot = _at(schedule, _month_day(today.year, today.month, schedule.day), zone)
        if slot <= local:
            slot = _advance(schedule, slot, 1)
        return slot
    if schedule.wday is not None:
        ahead = (schedule.wday - today.weekday()) % 7
        slot = _at(schedule, today + timedelta(days=ahead), zone)
        if slot <= local:
            slot = _at(schedule, today + timedelta(days=ahead + 7), zone)
        return slot
    slot = _at(schedule, today, zone)
    if slot <= local:
        slot = _at(schedule, today + timedelta(days=1), zone)
    return slot


def _advance(schedule: Schedule, slot: datetime, count: int) -> datetime:
    """The slot ``count`` days, weeks or months after ``slot``, same wall-clock time."""
    if count == 0:
        return slot
    if schedule.day is not None:
        months = slot.year * 12 + slot.month - 1 + count
        day = _month_day(months // 12, months % 12 + 1, schedule.day)
        return _at(schedule, day, slot.tzinfo)
    days = 7 * count if schedule.wday is not None else count
    return _at(schedule, slot.date() + timedelta(days=days), slot.tzinfo)
