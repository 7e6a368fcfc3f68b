"""When a wodle runs: one frozen type per kind of schedule, each answering "when next?".

- ``Interval``: every N seconds, counted from the start of the previous run.
- ``Daily``: at a wall-clock time, every N days.
- ``Weekly``: on a weekday at a wall-clock time, every N weeks.
- ``Monthly``: on a day of the month at a wall-clock time, every N months (a day the month
  lacks falls on its last day: 31 runs on 30 April, 28 or 29 February).

Each is pure: the times come in as arguments, and wall-clock times are read in the time
zone of the ``now`` given. Missed runs are never caught up in a burst: one run stands for
all of them.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

# A run that starts up to this long before its slot (a timer that fires a little early, a
# clock that was stepped) counts as that slot's run, so the slot is not run twice. Slots are
# at least one day apart, so this cannot skip a slot.
EARLY_START_GRACE = timedelta(minutes=1)

# Slots beyond this year (a monthly interval of millennia) are put on it, far from the end
# of datetime's range.
LAST_YEAR = 9000

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got: {value}")


def _check_at(at: time) -> None:
    if at.second or at.microsecond or at.tzinfo is not None:
        raise ValueError(f"the time of day is hours and minutes, got: {at.isoformat()}")


@dataclass(frozen=True, kw_only=True)
class Interval:
    """Every ``seconds``; the first run at start (``run_on_start``) or one interval later."""

    seconds: int
    run_on_start: bool = True

    def __post_init__(self) -> None:
        _positive("an interval's seconds", self.seconds)

    def first_run(self, now: datetime) -> datetime:
        """When the first run happens after a start at ``now``."""
        return now if self.run_on_start else now + timedelta(seconds=self.seconds)

    def next_run(self, last_start: datetime, now: datetime) -> datetime:
        """``last_start`` plus the interval, or ``now`` if that moment has passed."""
        due = last_start + timedelta(seconds=self.seconds)
        return due if due >= now else now


@dataclass(frozen=True, kw_only=True)
class _Slots:
    """A schedule of wall-clock slots: the first run at start (``run_on_start``), or at the
    first slot after it; then ``every`` slots apart."""

    at: time = time(0, 0)
    every: int = 1
    run_on_start: bool = True

    def __post_init__(self) -> None:
        _check_at(self.at)
        _positive("the number of days, weeks or months between runs", self.every)

    def first_run(self, now: datetime) -> datetime:
        """At once with ``run_on_start``, else the first slot strictly after ``now``."""
        if self.run_on_start:
            return now
        return self._slot_after(now, now.tzinfo)

    def next_run(self, last_start: datetime, now: datetime) -> datetime:
        """The first slot after ``last_start`` (a start up to ``EARLY_START_GRACE`` early counts
        as that slot's own run), stepped so that runs are ``every`` slots apart; a slot
        already past steps on by ``every`` to the first not before ``now``."""
        zone = now.tzinfo
        moment = last_start.astimezone(zone) + EARLY_START_GRACE
        slot = self._advance(self._slot_after(moment, zone), self.every - 1)
        while slot < now:
            slot = self._advance(slot, self.every)
        return slot

    def _on(self, day: date, zone: tzinfo | None) -> datetime:
        return datetime.combine(day, self.at, tzinfo=zone)

    def _slot_after(self, moment: datetime, zone: tzinfo | None) -> datetime:
        raise NotImplementedError

    def _advance(self, slot: datetime, count: int) -> datetime:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Daily(_Slots):
    """At ``at`` (local time), every ``every`` days."""

    def _slot_after(self, moment: datetime, zone: tzinfo | None) -> datetime:
        local = moment.astimezone(zone) if zone is not None else moment
        slot = self._on(local.date(), zone)
        return slot if slot > local else self._on(local.date() + timedelta(days=1), zone)

    def _advance(self, slot: datetime, count: int) -> datetime:
        return self._on(slot.date() + timedelta(days=count), slot.tzinfo)


@dataclass(frozen=True, kw_only=True)
class Weekly(_Slots):
    """On ``weekday`` (0 is Monday) at ``at``, every ``every`` weeks."""

    weekday: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got: {self.weekday}")

    def _slot_after(self, moment: datetime, zone: tzinfo | None) -> datetime:
        local = moment.astimezone(zone) if zone is not None else moment
        today = local.date()
        slot = self._on(today + timedelta(days=(self.weekday - today.weekday()) % 7), zone)
        return slot if slot > local else slot + timedelta(days=7)

    def _advance(self, slot: datetime, count: int) -> datetime:
        return self._on(slot.date() + timedelta(days=7 * count), slot.tzinfo)


@dataclass(frozen=True, kw_only=True)
class Monthly(_Slots):
    """On ``day`` of the month (1-31) at ``at``, every ``every`` months."""

    day: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.day <= 31:
            raise ValueError(f"day must be 1 to 31, got: {self.day}")

    def _day_in(self, year: int, month: int) -> date:
        return date(year, month, min(self.day, calendar.monthrange(year, month)[1]))

    def _slot_after(self, moment: datetime, zone: tzinfo | None) -> datetime:
        local = moment.astimezone(zone) if zone is not None else moment
        slot = self._on(self._day_in(local.year, local.month), zone)
        return slot if slot > local else self._advance(slot, 1)

    def _advance(self, slot: datetime, count: int) -> datetime:
        months = slot.year * 12 + slot.month - 1 + count
        if months // 12 > LAST_YEAR:  # the manager takes up to 2**32 - 2 months
            return self._on(date(LAST_YEAR, 1, self.day), slot.tzinfo)
        return self._on(self._day_in(months // 12, months % 12 + 1), slot.tzinfo)


Schedule = Interval | Daily | Weekly | Monthly


def first_run(schedule: Schedule, now: datetime) -> datetime:
    """When the first run of ``schedule`` happens after a start at ``now``."""
    return schedule.first_run(now)


def next_run(schedule: Schedule, last_start: datetime, now: datetime) -> datetime:
    """When the run after the one that started at ``last_start`` happens, seen at ``now``."""
    return schedule.next_run(last_start, now)
