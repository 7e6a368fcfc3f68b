"""Single option values, from text to data; each refusal is a ValueError naming the value."""

from __future__ import annotations

import re
from datetime import datetime, time, timezone
from urllib.parse import urlsplit

from dateutil.parser import isoparse

# Upper bounds keep the scheduler's date arithmetic far from datetime's limits.
MAX_INTERVAL_SECONDS = 3650 * 86400
MAX_INTERVAL_MONTHS = 120

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 604800
_SUFFIX_SECONDS = {"": 1, "s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}

# English month abbreviations, whatever the locale (calendar.month_abbr follows the locale).
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
# The manager's weekday names, in the order it tries them as prefixes (Sunday first).
_WDAY_PREFIXES = (
    ("sunday", 6), ("sun", 6), ("monday", 0), ("mon", 0), ("tuesday", 1), ("tue", 1),
    ("wednesday", 2), ("wed", 2), ("thursday", 3), ("thu", 3), ("friday", 4), ("fri", 4),
    ("saturday", 5), ("sat", 5),
)  # fmt: skip

# The manager reads an interval with strtoul(): leading white space, a sign, digits; the one
# character after the digits is the unit, and whatever follows it is ignored.
_INTERVAL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)(.?)(.*)", re.DOTALL)
_SHORT_DATE = re.compile(r"([0-9]{4})-([A-Za-z]{3})-([0-9]{1,2})")
# The manager reads a time with sscanf("%d:%d") after leading spaces: "7:30pm" is 07:30.
_TIME = re.compile(r" *[ \t\n\v\f\r]*([+-]?[0-9]+):[ \t\n\v\f\r]*([+-]?[0-9]+)")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")

ROLE_DURATION_MIN = 900
ROLE_DURATION_MAX = 3600


def show(value: str) -> str:
    """Quote a configured value for a message, cut short when long."""
    if len(value) > 80:
        value = value[:77] + "..."
    return f"'{value}'"


def parse_interval(text: str) -> tuple[int | None, int | None]:
    """Read an interval as ``(seconds, None)``, or ``(None, months)`` for the ``M`` unit.

    A positive whole number and an optional unit: none or ``s`` (seconds), ``m``, ``h``,
    ``d``, ``w`` (604800 s), or ``M`` (calendar months). As the manager does, leading white
    space is skipped and what follows the unit is ignored (``10min`` is 10 minutes).
    """
    hint = "expected a positive number with an optional suffix s, m, h, d, w or M (e.g. 10m)"
    found = _INTERVAL.fullmatch(text)
    shown = show(text.strip())
    if found is None:
        raise ValueError(f"invalid interval {shown}: {hint}")
    sign, digits, unit, _ = found.groups()
    if unit != "M" and unit not in _SUFFIX_SECONDS:
        raise ValueError(
            f"invalid interval {shown}: unknown suffix {show(unit)} (use s, m, h, d, w or M)"
        )
    number = int(digits)
    if sign == "-" or number == 0:
        raise ValueError(f"invalid interval {shown}: must be greater than 0")
    if unit == "M":
        if number > MAX_INTERVAL_MONTHS:
            raise ValueError(f"invalid interval {shown}: at most {MAX_INTERVAL_MONTHS} months")
        return None, number
    seconds = number * _SUFFIX_SECONDS[unit]
    if seconds > MAX_INTERVAL_SECONDS:
        raise ValueError(f"invalid interval {shown}: at most 3650 days")
    return seconds, None


def ignored_after_interval(text: str) -> str:
    """What the manager ignores after an interval's unit (``in`` of ``10min``), if anything."""
    found = _INTERVAL.fullmatch(text)
    return "" if found is None else found.group(4).strip()


def parse_date(text: str) -> datetime:
    """Read ``YYYY-MMM-DD`` (e.g. ``2024-JAN-31``, any case) or an ISO date/datetime, as UTC.

    A date or datetime without an offset is taken as UTC; one with an offset is converted.
    """
    value = text.strip()
    problem = f"invalid date {show(value)}: expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date"
    short = _SHORT_DATE.fullmatch(value)
    try:
        if short is not None:
            year, month_name, day = short.groups()
            month = _MONTHS.get(month_name.upper())
            if month is None:
                raise ValueError(problem)
            parsed = datetime(int(year), month, int(day))
        else:
            parsed = isoparse(value)
    except (ValueError, OverflowError):
        raise ValueError(problem) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_yes_no(name: str, text: str) -> bool:
    """``yes`` or ``no``, exactly: the manager refuses any other spelling, spaces included."""
    if text in ("yes", "no"):
        return text == "yes"
    hint = "in lower case and without spaces" if text.strip().lower() in ("yes", "no") else ""
    raise ValueError(f"invalid {name} {show(text)}: expected yes or no{' ' + hint if hint else ''}")


def parse_day(text: str) -> int:
    """A day of the month, 1 to 31, in digits only (as the manager requires)."""
    if re.fullmatch(r"[0-9]+", text) and 1 <= int(text) <= 31:
        return int(text)
    raise ValueError(f"invalid day {show(text)}: expected a day of the month from 1 to 31")


def parse_wday(text: str) -> int:
    """A weekday, 0 for Monday: as the manager, any case, and a name or its first three
    letters at the start of the text (``Sundays`` is Sunday)."""
    name = text.lstrip(" ").lower()
    for prefix, number in _WDAY_PREFIXES:
        if name.startswith(prefix):
            return number
    raise ValueError(f"invalid wday {show(text)}: expected a weekday (monday..sunday or mon..sun)")


def parse_time(text: str) -> time:
    """A time of day ``hh:mm``, 00:00 to 23:59, read as loosely as the manager reads it."""
    found = _TIME.match(text)
    if found is not None:
        hour, minute = int(found.group(1)), int(found.group(2))
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            return time(hour, minute)
    raise ValueError(f"invalid time {show(text.strip())}: expected hh:mm from 00:00 to 23:59")


def split_list(name: str, text: str) -> tuple[list[str], list[str]]:
    """A comma-separated option's entries, spaces around commas allowed, and the entries
    listed more than once (kept once). An empty entry is refused."""
    entries = [entry.strip() for entry in text.split(",")]
    if not text.strip() or any(not entry for entry in entries):
        raise ValueError(f"{name} has an empty entry: {show(text.strip())}")
    unique: list[str] = []
    repeated: list[str] = []
    for entry in entries:
        if entry in unique:
            repeated.append(entry)
        else:
            unique.append(entry)
    return unique, repeated


def parse_role_arn(text: str) -> str:
    if _ROLE_ARN.fullmatch(text) is None:
        raise ValueError(
            f"invalid iam_role_arn {show(text)}: expected arn:PARTITION:iam::ACCOUNT_ID:role/NAME"
        )
    return text


def parse_role_duration(text: str) -> int:
    if re.fullmatch(r"[0-9]{1,5}", text) and ROLE_DURATION_MIN <= int(text) <= ROLE_DURATION_MAX:
        return int(text)
    raise ValueError(
        f"invalid iam_role_duration {show(text)}: expected seconds, "
        f"{ROLE_DURATION_MIN} to {ROLE_DURATION_MAX}"
    )


def parse_endpoint(name: str, text: str) -> str:
    """An endpoint URL; a bare host name (as our users' documentation shows for VPC
    endpoints) means https."""
    value = text
    if "://" not in value and _HOST.fullmatch(value):
        value = "https://" + value
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError(
            f"invalid {name} {show(text)}: expected a host name or an http:// or https:// URL"
        )
    return value


def parse_account_id(text: str) -> str:
    if _ACCOUNT_ID.fullmatch(text) is None:
        raise ValueError(f"invalid aws_account_id {show(text)}: expected 12 digits")
    return text


def parse_discard_field(text: str) -> str:
    """A dotted path through nested JSON objects (``detail.scan-status``)."""
    if any(not part for part in text.split(".")):
        raise ValueError(
            f"invalid discard_regex field {show(text)}: a dotted path has an empty part"
        )
    return text


def compile_regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except (re.error, OverflowError, RecursionError) as error:
        raise ValueError(f"invalid discard_regex {show(text)}: {error}") from None
