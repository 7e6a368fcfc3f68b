"""Single option values, from text to data; each refusal is a ValueError naming the value."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from datetime import datetime, time, timezone
from urllib.parse import urlsplit

from dateutil.parser import isoparse

# The manager keeps an interval in a C unsigned int: values wrap at 2**32.
UINT_LIMIT = 2**32
# Beyond these the manager still takes an interval, and check-config warns.
LONG_INTERVAL_SECONDS = 3650 * 86400
LONG_INTERVAL_MONTHS = 120

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 604800

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

C_SPACE = " \t\n\v\f\r"  # C's isspace() in the C locale
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


@dataclass(frozen=True)
class ManagerInterval:
    """An interval as the manager reads it: ``value`` (an unsigned 32-bit number, already
    multiplied by its unit's seconds unless ``months``), whether the unit is ``M``, what
    follows the unit (ignored), and notes on where it differs from what is written."""

    value: int
    months: bool
    rest: str = ""
    notes: tuple[str, ...] = ()


def _strtoul(text: str) -> tuple[int, int, int, int]:
    """C's strtoul(text, &end, 0): the value (modulo 2**64), the index of ``end``, the base
    it read (16, 8 or 10; 0 when no digit was read, then ``end`` is 0) and the number as
    written, sign included."""
    i = 0
    while i < len(text) and text[i] in C_SPACE:
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base, digits = 10, "0123456789"
    if text[i : i + 2] in ("0x", "0X") and i + 2 < len(text) and text[i + 2] in _HEX:
        base, digits, i = 16, _HEX, i + 2
    elif text[i : i + 1] == "0":
        base, digits = 8, "01234567"
    start = i
    while i < len(text) and text[i] in digits:
        i += 1
    if i == start:
        return 0, 0, 0, 0
    number = int(text[start:i], base)
    written = -number if negative else number
    if number >= 2**64:
        return 2**64 - 1, i, base, written
    return written % 2**64, i, base, written


_HEX = "0123456789abcdefABCDEF"
_UNIT_SECONDS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": 1, "": 1}


def read_interval(text: str) -> ManagerInterval:
    """Read an interval as the manager does: C's strtoul() with base 0 (so ``010`` is
    octal 8 and ``0x10`` is 16, leading white space and a sign are allowed, a minus wraps
    around), kept in 32 bits, then the one character after the digits: none or ``s``,
    ``m``, ``h``, ``d``, ``w`` multiply (wrapping at 2**32 too), ``M`` counts months, and
    whatever follows that character is ignored. Refused (ValueError): no number, 0, or
    2**32 - 1 before the unit, or another character after the digits."""
    shown = show(text.strip(C_SPACE))
    number, end, base, written = _strtoul(text)
    value = number % UINT_LIMIT
    if not base:
        raise ValueError(
            f"invalid interval {shown}: expected a positive number with an optional suffix "
            "s, m, h, d, w or M (e.g. 10m)"
        )
    if value == 0:
        raise ValueError(f"invalid interval {shown}: must be greater than 0 (in 32 bits)")
    if value == UINT_LIMIT - 1:
        raise ValueError(
            f"invalid interval {shown}: it is 4294967295 in 32 bits, which the manager refuses"
        )
    unit = text[end : end + 1]
    if unit != "M" and unit not in _UNIT_SECONDS:
        raise ValueError(
            f"invalid interval {shown}: unknown suffix {show(unit)} (use s, m, h, d, w or M)"
        )
    months = unit == "M"
    size = 1 if months else _UNIT_SECONDS[unit]
    result = value * size % UINT_LIMIT
    reasons: list[str] = []
    if base == 16:
        reasons.append("hexadecimal")
    elif base == 8:
        reasons.append("octal, for its leading 0")
    if written < 0:
        reasons.append("a negative number wraps around")
    elif written * size != result:
        reasons.append("the number wraps at 2**32")
    notes: list[str] = []
    if reasons:
        notes.append(f"the manager reads it as {result} {_unit(months)} ({'; '.join(reasons)})")
    if months and result > LONG_INTERVAL_MONTHS:
        notes.append(f"runs are {result} months apart, more than {LONG_INTERVAL_MONTHS}")
    elif not months and result > LONG_INTERVAL_SECONDS:
        notes.append(f"runs are {result} s apart, more than 3650 days")
    rest = text[end + 1 :].strip(C_SPACE) if unit else ""
    return ManagerInterval(result, months, rest, tuple(notes))


def _unit(months: bool) -> str:
    return "months" if months else "seconds"


def parse_interval(text: str) -> tuple[int | None, int | None]:
    """Read an interval as ``(seconds, None)``, or ``(None, months)`` for the ``M`` unit,
    with the manager's value (see ``read_interval``)."""
    interval = read_interval(text)
    if interval.months:
        return None, interval.value
    return interval.value, None


def parse_date(text: str) -> datetime:
    """Read ``YYYY-MMM-DD`` (e.g. ``2024-JAN-31``, any case) or an ISO date/datetime, as UTC.

    A date or datetime without an offset is taken as UTC; one with an offset is converted.
    """
    value = text.strip(C_SPACE)
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
    """A day of the month as the manager reads it: digits only (C's atoi, so the number is
    cut to a C int, and an empty text is 0), then 1 to 31."""
    if re.fullmatch(r"[0-9]*", text):
        number = min(int(text or "0"), 2**63 - 1) % 2**32
        day = number - 2**32 if number >= 2**31 else number
        if 1 <= day <= 31:
            return day
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
    entries = [entry.strip(C_SPACE) for entry in text.split(",")]
    if not text.strip(C_SPACE) or any(not entry for entry in entries):
        raise ValueError(f"{name} has an empty entry: {show(text.strip(C_SPACE))}")
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


FORMATS = ("syslog", "json", "plain")


def family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address, AF_INET for an IPv4 one."""
    version = ipaddress.ip_address(host.partition("%")[0]).version
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def parse_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` on a loopback address this host can bind (metrics are never exposed
    beyond the host): ``127.0.0.1:9101``, ``[::1]:9101`` or ``localhost:9101``. Returns
    the numeric address to bind, ``localhost`` resolved."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid metrics address '{text}': expected ADDR:PORT")
    if host == "localhost" and not bracketed:
        candidates = _localhost(text)
    else:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"metrics address '{text}' is not a loopback address") from None
        if bracketed != (ip.version == 6):
            raise ValueError(
                f"invalid metrics address '{text}': an IPv6 address goes in brackets "
                "([::1]:PORT), an IPv4 address without (127.0.0.1:PORT)"
            )
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # bound as the IPv4 address it stands for
        if not ip.is_loopback:
            raise ValueError(f"metrics address '{text}' is not a loopback address")
        candidates = [str(ip)]
    problems = []
    for candidate in candidates:
        problem = _bind_problem(candidate)
        if problem is None:
            return candidate, int(port)
        problems.append(f"{candidate}: {problem}")
    raise ValueError(
        f"metrics address '{text}' cannot be bound on this host ({'; '.join(problems)})"
    )


def _localhost(text: str) -> list[str]:
    """The addresses ``localhost`` resolves to, in the resolver's order; each must be a
    loopback address."""
    try:
        found = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"metrics address '{text}': cannot resolve localhost: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        if not ipaddress.ip_address(address.partition("%")[0]).is_loopback:
            raise ValueError(
                f"metrics address '{text}': localhost resolves to {address}, not a loopback address"
            )
    return addresses


def _bind_problem(host: str) -> str | None:
    """Why a socket of the address's family cannot bind it (on a port of the kernel's
    choice), or None when it can."""
    try:
        with socket.socket(family(host), socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
