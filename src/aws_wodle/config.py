"""Read the aws-s3 wodle blocks of ossec.conf into frozen data classes, with file:line problems."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from dateutil.parser import isoparse
from lxml import etree

from aws_wodle.errors import ConfigError, ConfigProblem

# 5 minutes: our collection reads only what changed since the last run, so a run is cheap;
# the old module's 5 s default hammers the CloudWatch Logs API for no benefit.
DEFAULT_INTERVAL_SECONDS = 300

# ossec.conf is a few kilobytes; anything this large is a mistake, and parsing it would only
# cost memory.
MAX_FILE_BYTES = 16 * 1024 * 1024

# Upper bounds keep the scheduler's date arithmetic far from datetime's limits.
MAX_INTERVAL_SECONDS = 3650 * 86400
MAX_INTERVAL_MONTHS = 120

_MINUTE = 60
_HOUR = 3600
_DAY = 86400
_WEEK = 604800
_SUFFIX_SECONDS = {"": 1, "s": 1, "m": _MINUTE, "h": _HOUR, "d": _DAY, "w": _WEEK}

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# English month abbreviations, whatever the locale (calendar.month_abbr follows the locale).
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}

# The file holds several <ossec_config> roots; they are wrapped in this element to parse.
_ROOT = "aws_wodle_synthetic_root"
_XML_DECLARATION = re.compile(rb"\A\s*<\?xml\b.*?\?>", re.DOTALL)
_LXML_POSITION = re.compile(r", line \d+, column \d+$")

_WODLE_SCHEDULE_OPTIONS = ("disabled", "interval", "run_on_start", "skip_on_error")
_WODLE_SINGLE_OPTIONS = (*_WODLE_SCHEDULE_OPTIONS, "day", "wday", "time")
_SERVICE_OPTIONS = (
    "aws_log_groups",
    "regions",
    "only_logs_after",
    "aws_profile",
    "access_key",
    "secret_key",
    "iam_role_arn",
    "iam_role_duration",
    "sts_endpoint",
    "service_endpoint",
    "aws_account_id",
    "aws_account_alias",
    "remove_log_streams",
    "discard_regex",
)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_INTERVAL = re.compile(r"(-?)([0-9]+)(.*)", re.DOTALL)
_SHORT_DATE = re.compile(r"([0-9]{4})-([A-Za-z]{3})-([0-9]{1,2})")

_ROLE_DURATION_MIN = 900
_ROLE_DURATION_MAX = 3600


@dataclass(frozen=True)
class DiscardRule:
    """Drop events whose message (or a dotted JSON field of it) matches a regex from its start."""

    pattern: re.Pattern[str]
    field: str | None

    def discards(self, message: str) -> bool:
        """Tell whether ``message`` is to be dropped.

        Without a field, the regex is matched at the start of the whole message. With a field,
        the message is read as a JSON object and the dotted path (``a.b.c`` through nested
        objects) is looked up: a message that is not a JSON object, or lacks the path, is kept.
        A string value is matched as is; any other value as its JSON text.
        """
        if self.field is None:
            return self.pattern.match(message) is not None
        try:
            value: object = json.loads(message)
        except (ValueError, RecursionError):
            return False
        for part in self.field.split("."):
            if not isinstance(value, dict) or part not in value:
                return False
            value = value[part]
        text = value if isinstance(value, str) else json.dumps(value)
        return self.pattern.match(text) is not None


@dataclass(frozen=True)
class Schedule:
    """When a wodle runs: a plain interval, or a fixed time of day, week or month."""

    interval_seconds: int | None
    interval_months: int | None
    day: int | None
    wday: int | None
    time: tuple[int, int] | None
    run_on_start: bool


@dataclass(frozen=True)
class CloudWatchService:
    """One ``<service type="cloudwatchlogs">`` block; the secret key never shows in repr."""

    line: int
    log_groups: tuple[str, ...]
    regions: tuple[str, ...]
    only_logs_after: datetime | None
    aws_profile: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    iam_role_arn: str | None = None
    iam_role_duration: int | None = None
    sts_endpoint: str | None = None
    service_endpoint: str | None = None
    aws_account_id: str | None = None
    aws_account_alias: str | None = None
    remove_log_streams: bool = False
    discard: DiscardRule | None = None


@dataclass(frozen=True)
class Wodle:
    """One ``<wodle name="aws-s3">`` block; ``services`` holds only its CloudWatch Logs ones."""

    line: int
    disabled: bool
    schedule: Schedule
    skip_on_error: bool
    services: tuple[CloudWatchService, ...]


@dataclass(frozen=True)
class Config:
    """Every aws-s3 wodle of a file, disabled ones included, and the non-fatal problems."""

    path: str
    wodles: tuple[Wodle, ...]
    warnings: tuple[ConfigProblem, ...]


def parse_interval(text: str) -> tuple[int | None, int | None]:
    """Read an interval as ``(seconds, None)``, or ``(None, months)`` for the ``M`` suffix.

    A positive integer with an optional suffix: none or ``s`` (seconds), ``m``, ``h``, ``d``,
    ``w`` (604800 s), or ``M`` (calendar months).
    """
    value = text.strip()
    hint = "expected a positive number with an optional suffix s, m, h, d, w or M (e.g. 10m)"
    found = _INTERVAL.fullmatch(value)
    if found is None:
        raise ValueError(f"invalid interval {_show(value)}: {hint}")
    sign, digits, suffix = found.groups()
    if suffix != "M" and suffix not in _SUFFIX_SECONDS:
        raise ValueError(
            f"invalid interval {_show(value)}: unknown suffix {_show(suffix)} "
            "(use s, m, h, d, w or M)"
        )
    number = int(digits)
    if sign:
        raise ValueError(f"invalid interval {_show(value)}: must be greater than 0")
    if number == 0:
        raise ValueError(f"invalid interval {_show(value)}: must be greater than 0")
    if suffix == "M":
        if number > MAX_INTERVAL_MONTHS:
            raise ValueError(
                f"invalid interval {_show(value)}: at most {MAX_INTERVAL_MONTHS} months"
            )
        return None, number
    seconds = number * _SUFFIX_SECONDS[suffix]
    if seconds > MAX_INTERVAL_SECONDS:
        raise ValueError(f"invalid interval {_show(value)}: at most 3650 days")
    return seconds, None


def parse_date(text: str) -> datetime:
    """Read ``YYYY-MMM-DD`` (e.g. ``2024-JAN-31``, any case) or an ISO date/datetime, as UTC.

    A date or datetime without an offset is taken as UTC; one with an offset is converted.
    """
    value = text.strip()
    problem = f"invalid date {_show(value)}: expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date"
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


def load_config(path: str | os.PathLike[str], known_regions: Collection[str]) -> Config:
    """Read and parse the file at ``path``; an unreadable file is a problem on line 0."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError([ConfigProblem(name, 0, f"cannot read the file: {reason}")]) from None
    config = parse_config(data, name, known_regions)
    return _warn_readable_secrets(config, os.stat(name).st_mode)


def _warn_readable_secrets(config: Config, mode: int) -> Config:
    """Add a warning per service holding a secret_key when other users may read the file."""
    if not mode & stat.S_IROTH:
        return config
    extra = [
        ConfigProblem(
            config.path,
            service.line,
            f"secret_key is in a file that other users can read (mode {stat.S_IMODE(mode):04o});"
            " restrict it (chmod o-r) or use aws_profile or iam_role_arn",
        )
        for wodle in config.wodles
        for service in wodle.services
        if service.secret_key
    ]
    if not extra:
        return config
    warnings = tuple(sorted((*config.warnings, *extra), key=lambda p: p.line))
    return dataclasses.replace(config, warnings=warnings)


def parse_config(data: bytes, path: str, known_regions: Collection[str]) -> Config:
    """Parse ossec.conf content; raise ConfigError listing every error found, in line order.

    ``known_regions`` holds every region valid for CloudWatch Logs in any partition.
    """
    report = _Report(path)
    root = _parse_xml(data, report)
    wodles: list[Wodle] = []
    if root is not None:
        for child in _elements(root):
            if child.tag != "ossec_config":
                report.error(child, f"unexpected element <{child.tag}> outside <ossec_config>")
                continue
            for section in _elements(child):
                if section.tag == "wodle" and (section.get("name") or "").strip() == "aws-s3":
                    wodles.append(_parse_wodle(section, report, known_regions))
    return report.finish(tuple(wodles))


def summary(config: Config) -> str:
    """Describe the configuration on one screen, for ``check-config``; no secret is shown."""
    count = len(config.wodles)
    lines = [f"{config.path}: {count} aws-s3 wodle{'s' if count != 1 else ''}"]
    for wodle in config.wodles:
        state = "disabled" if wodle.disabled else "enabled"
        lines.append(f"wodle at line {wodle.line}: {state}")
        lines.append(f"  schedule: {describe_schedule(wodle.schedule)}")
        lines.append(f"  skip_on_error: {_yes(wodle.skip_on_error)}")
        if not wodle.services:
            lines.append("  no CloudWatch Logs service: nothing to collect")
        for service in wodle.services:
            lines.extend(_describe_service(service))
    if config.warnings:
        lines.append(f"{len(config.warnings)} warning{'s' if len(config.warnings) != 1 else ''}:")
        lines.extend(f"  {warning}" for warning in config.warnings)
    return "\n".join(lines)


def describe_schedule(schedule: Schedule) -> str:
    """Put a schedule in words, e.g. ``every 5m, first run at start`` or ``daily at 03:00``."""
    start = "first run at start" if schedule.run_on_start else "first run after one interval"
    hour, minute = schedule.time or (0, 0)
    at = f"at {hour:02d}:{minute:02d}"
    if schedule.day is not None:
        months = schedule.interval_months or 1
        every = f", every {months} months" if months > 1 else ""
        start = "also at start" if schedule.run_on_start else "first run at the next slot"
        return f"monthly on day {schedule.day} {at}{every}, {start}"
    seconds = schedule.interval_seconds or 0
    if schedule.wday is not None:
        weeks = max(seconds // _WEEK, 1)
        every = f", every {weeks} weeks" if weeks > 1 else ""
        start = "also at start" if schedule.run_on_start else "first run at the next slot"
        return f"weekly on {_WEEKDAYS[schedule.wday]} {at}{every}, {start}"
    if schedule.time is not None:
        days = max(seconds // _DAY, 1)
        start = "also at start" if schedule.run_on_start else "first run at the next slot"
        if days == 1:
            return f"daily {at}, {start}"
        return f"every {days} days {at}, {start}"
    if schedule.interval_months is not None:
        return f"every {schedule.interval_months}M, {start}"
    return f"every {_duration(seconds)}, {start}"


class _Report:
    """Collects errors and warnings with their line while a file is parsed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def error(self, where: etree._Element | int, message: str) -> None:
        self.errors.append(ConfigProblem(self.path, _line(where), message))

    def warn(self, where: etree._Element | int, message: str) -> None:
        self.warnings.append(ConfigProblem(self.path, _line(where), message))

    def finish(self, wodles: tuple[Wodle, ...]) -> Config:
        if self.errors:
            raise ConfigError(sorted(self.errors, key=lambda problem: problem.line))
        warnings = tuple(sorted(self.warnings, key=lambda problem: problem.line))
        return Config(path=self.path, wodles=wodles, warnings=warnings)


def _line(where: etree._Element | int) -> int:
    if isinstance(where, int):
        return where
    line: object = where.sourceline
    return line if isinstance(line, int) else 0


def _show(value: str) -> str:
    """Quote a configured value for a message, cut short when long."""
    if len(value) > 80:
        value = value[:77] + "..."
    return f"'{value}'"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _duration(seconds: int) -> str:
    for suffix, size in (("w", _WEEK), ("d", _DAY), ("h", _HOUR), ("m", _MINUTE)):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def _parse_xml(data: bytes, report: _Report) -> etree._Element | None:
    """Parse the whole file inside a synthetic root on line 1, so that lines stay true."""
    if len(data) > MAX_FILE_BYTES:
        report.error(0, f"file too large: more than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return None
    data = data.removeprefix(b"\xef\xbb\xbf")
    declaration = _XML_DECLARATION.match(data)
    if declaration is not None:
        blank = bytes(b if b == 0x0A else 0x20 for b in declaration.group())
        data = blank + data[declaration.end() :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        report.error(
            line, f"not valid UTF-8 (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        )
        return None
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False
    )
    wrapped = b"<" + _ROOT.encode() + b">" + data + b"</" + _ROOT.encode() + b">"
    try:
        # The parser neither resolves entities nor reaches the network (see above).
        return etree.fromstring(wrapped, parser)
    except etree.XMLSyntaxError as error:
        message = _LXML_POSITION.sub("", error.msg or "unreadable XML")
        message = message.replace(f" and {_ROOT}", " and the end of the file")
        message = message.replace(f"tag {_ROOT} line 1", "the file")
        report.error(error.lineno or 0, f"XML syntax error: {message}")
        return None


def _elements(parent: etree._Element) -> list[etree._Element]:
    """The child elements of ``parent``, without comments, processing instructions, entities."""
    return [child for child in parent if isinstance(child.tag, str)]


def _text(element: etree._Element, report: _Report) -> str | None:
    """The stripped text of an option element, or None (with an error) if it holds elements."""
    if _elements(element):
        report.error(element, f"<{element.tag}> must hold a value, not elements")
        return None
    return _joined_text(element).strip()


def _single_options(
    children: list[etree._Element], names: Collection[str], report: _Report
) -> dict[str, etree._Element]:
    """Pick the single-valued options among ``children``; a repeated one is an error."""
    found: dict[str, etree._Element] = {}
    for child in children:
        name = str(child.tag)
        if name not in names:
            continue
        if name in found:
            first = _line(found[name])
            report.error(child, f"duplicate option <{name}> (first set on line {first})")
            continue
        found[name] = child
    return found


def _yes_no(element: etree._Element | None, default: bool, report: _Report) -> bool:
    if element is None:
        return default
    value = _text(element, report)
    if value is None:
        return default
    if value.lower() == "yes":
        return True
    if value.lower() == "no":
        return False
    report.error(element, f"invalid {element.tag} {_show(value)}: expected yes or no")
    return default


def _parse_wodle(wodle: etree._Element, report: _Report, known_regions: Collection[str]) -> Wodle:
    children = _elements(wodle)
    options = _single_options(children, _WODLE_SINGLE_OPTIONS, report)
    services: list[CloudWatchService] = []
    ignored: list[tuple[int, str]] = []
    entries = 0
    for child in children:
        tag = str(child.tag)
        if tag in _WODLE_SINGLE_OPTIONS:
            continue
        if tag in ("bucket", "subscriber"):
            entries += 1
            kind = (child.get("type") or "").strip()
            label = f'<{tag} type="{kind}">' if kind else f"<{tag}>"
            ignored.append((_line(child), label))
        elif tag == "service":
            entries += 1
            kind = (child.get("type") or "").strip()
            if not kind:
                report.error(child, '<service> needs a type attribute, e.g. type="cloudwatchlogs"')
            elif kind == "cloudwatchlogs":
                service = _parse_service(child, report, known_regions)
                if service is not None:
                    services.append(service)
            else:
                ignored.append((_line(child), f'<service type="{kind}">'))
        else:
            report.error(child, f"unknown option <{tag}> in aws-s3 wodle")
    if entries == 0:
        report.error(wodle, "aws-s3 wodle needs at least one <service>, <bucket> or <subscriber>")
    if ignored:
        listed = ", ".join(f"{label} (line {line})" for line, label in ignored)
        report.warn(
            ignored[0][0],
            "this collector handles only CloudWatch Logs "
            f'(<service type="cloudwatchlogs">); {listed} ignored',
        )
    return Wodle(
        line=_line(wodle),
        disabled=_yes_no(options.get("disabled"), False, report),
        schedule=_parse_schedule(options, report),
        skip_on_error=_yes_no(options.get("skip_on_error"), False, report),
        services=tuple(services),
    )


def _parse_schedule(options: dict[str, etree._Element], report: _Report) -> Schedule:
    """Apply Wazuh's scheduling rules: day counts months, wday weeks, time alone days."""
    run_on_start = _yes_no(options.get("run_on_start"), True, report)
    day = _parse_day(options.get("day"), report)
    wday = _parse_wday(options.get("wday"), report)
    at = _parse_time(options.get("time"), report)
    interval_element = options.get("interval")
    seconds: int | None = None
    months: int | None = None
    interval_ok = interval_element is None
    if interval_element is not None:
        text = _text(interval_element, report)
        if text is not None:
            try:
                seconds, months = parse_interval(text)
                interval_ok = True
            except ValueError as error:
                report.error(interval_element, str(error))
    shown = _show(_text_quiet(interval_element))
    if "day" in options and "wday" in options:
        later = max(options["day"], options["wday"], key=_line)
        report.error(later, "<day> and <wday> cannot be used together")
    if day is not None or "day" in options:
        if interval_element is None or not interval_ok:
            months = 1
        elif months is None:
            report.error(
                interval_element,
                f"invalid interval {shown}: with <day> the interval counts months (e.g. 1M)",
            )
        return Schedule(None, months or 1, day, None, at or (0, 0), run_on_start)
    if wday is not None or "wday" in options:
        if interval_element is None or not interval_ok:
            seconds = _WEEK
        elif seconds is None or seconds % _WEEK != 0:
            report.error(
                interval_element,
                f"invalid interval {shown}: with <wday> the interval counts whole weeks (e.g. 1w)",
            )
        return Schedule(seconds or _WEEK, None, None, wday, at or (0, 0), run_on_start)
    if at is not None or "time" in options:
        if interval_element is None or not interval_ok:
            seconds = _DAY
        elif seconds is None or seconds % _DAY != 0:
            report.error(
                interval_element,
                f"invalid interval {shown}: with <time> the interval counts whole days (e.g. 1d)",
            )
        return Schedule(seconds or _DAY, None, None, None, at, run_on_start)
    if months is not None and interval_element is not None:
        report.error(interval_element, f"invalid interval {shown}: a months interval needs <day>")
    return Schedule(seconds or DEFAULT_INTERVAL_SECONDS, None, None, None, None, run_on_start)


def _joined_text(element: etree._Element) -> str:
    """The text of an element and its children, comments left out."""
    return "".join(str(part) for part in element.itertext())


def _text_quiet(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return _joined_text(element).strip()


def _parse_day(element: etree._Element | None, report: _Report) -> int | None:
    if element is None:
        return None
    value = _text(element, report)
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,2}", value) and 1 <= int(value) <= 31:
        return int(value)
    report.error(element, f"invalid day {_show(value)}: expected a day of the month from 1 to 31")
    return None


def _parse_wday(element: etree._Element | None, report: _Report) -> int | None:
    if element is None:
        return None
    value = _text(element, report)
    if value is None:
        return None
    name = value.lower()
    for number, weekday in enumerate(_WEEKDAYS):
        if name in (weekday, weekday[:3]):
            return number
    report.error(
        element, f"invalid wday {_show(value)}: expected a weekday (monday..sunday or mon..sun)"
    )
    return None


def _parse_time(element: etree._Element | None, report: _Report) -> tuple[int, int] | None:
    if element is None:
        return None
    value = _text(element, report)
    if value is None:
        return None
    found = _TIME.fullmatch(value)
    if found is not None:
        hour, minute = int(found.group(1)), int(found.group(2))
        if hour <= 23 and minute <= 59:
            return hour, minute
    report.error(element, f"invalid time {_show(value)}: expected hh:mm from 00:00 to 23:59")
    return None


def _parse_service(
    service: etree._Element, report: _Report, known_regions: Collection[str]
) -> CloudWatchService | None:
    children = _elements(service)
    for child in children:
        if child.tag not in _SERVICE_OPTIONS:
            report.error(child, f"unknown option <{child.tag}> in cloudwatchlogs service")
    options = _single_options(children, _SERVICE_OPTIONS, report)
    values: dict[str, str] = {}
    for name, element in options.items():
        if name == "remove_log_streams":  # read by _yes_no below
            continue
        text = _text(element, report)
        if text is None:
            continue
        if not text and name not in ("regions", "discard_regex"):
            report.error(element, f"{name} is empty")
            continue
        values[name] = text
    before = len(report.errors)

    log_groups: tuple[str, ...] = ()
    if "aws_log_groups" not in options:
        report.error(service, "cloudwatchlogs service needs <aws_log_groups>")
    elif "aws_log_groups" in values:
        log_groups = _split_list(options["aws_log_groups"], values["aws_log_groups"], report)

    regions: tuple[str, ...] = ()
    if "regions" in values:
        element = options["regions"]
        if not values["regions"]:
            report.warn(
                element, "no regions: every region of the credentials' partition is searched"
            )
        else:
            regions = _split_list(element, values["regions"], report)
            for region in regions:
                if region not in known_regions:
                    report.error(element, f"unknown region {_show(region)} for CloudWatch Logs")

    only_logs_after: datetime | None = None
    if "only_logs_after" in values:
        try:
            only_logs_after = parse_date(values["only_logs_after"])
        except ValueError:
            report.error(
                options["only_logs_after"],
                f"invalid only_logs_after {_show(values['only_logs_after'])}: "
                "expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date",
            )

    access_key = values.get("access_key")
    secret_key = values.get("secret_key")
    if "access_key" in options and "secret_key" not in options:
        report.error(options["access_key"], "access_key needs secret_key")
    elif "secret_key" in options and "access_key" not in options:
        report.error(options["secret_key"], "secret_key needs access_key")
    elif access_key and secret_key:
        report.warn(
            options["access_key"],
            "access_key/secret_key are deprecated; use aws_profile or iam_role_arn",
        )

    role_arn = values.get("iam_role_arn")
    if role_arn is not None and _ROLE_ARN.fullmatch(role_arn) is None:
        report.error(
            options["iam_role_arn"],
            f"invalid iam_role_arn {_show(role_arn)}: "
            "expected arn:PARTITION:iam::ACCOUNT_ID:role/NAME",
        )
    role_duration: int | None = None
    if "iam_role_duration" in values:
        element = options["iam_role_duration"]
        text = values["iam_role_duration"]
        if (
            re.fullmatch(r"[0-9]{1,5}", text)
            and _ROLE_DURATION_MIN <= int(text) <= _ROLE_DURATION_MAX
        ):
            role_duration = int(text)
        else:
            report.error(
                element, f"invalid iam_role_duration {_show(text)}: expected seconds, 900 to 3600"
            )
        if "iam_role_arn" not in options:
            report.error(element, "iam_role_duration needs iam_role_arn")

    for name in ("sts_endpoint", "service_endpoint"):
        if name not in values:
            continue
        # Our users' documentation shows bare VPC endpoint host names: those mean https.
        if "://" not in values[name] and _HOST.fullmatch(values[name]):
            values[name] = "https://" + values[name]
        if not _is_url(values[name]):
            report.error(
                options[name],
                f"invalid {name} {_show(values[name])}: expected a host name or an "
                "http:// or https:// URL",
            )

    account_id = values.get("aws_account_id")
    if account_id is not None and _ACCOUNT_ID.fullmatch(account_id) is None:
        report.error(
            options["aws_account_id"],
            f"invalid aws_account_id {_show(account_id)}: expected 12 digits",
        )

    remove = _yes_no(options.get("remove_log_streams"), False, report)
    discard = None
    if "discard_regex" in options and "discard_regex" in values:
        discard = _parse_discard(options["discard_regex"], values["discard_regex"], report)

    if len(report.errors) != before:
        return None
    return CloudWatchService(
        line=_line(service),
        log_groups=log_groups,
        regions=regions,
        only_logs_after=only_logs_after,
        aws_profile=values.get("aws_profile"),
        access_key=access_key,
        secret_key=secret_key,
        iam_role_arn=role_arn,
        iam_role_duration=role_duration,
        sts_endpoint=values.get("sts_endpoint"),
        service_endpoint=values.get("service_endpoint"),
        aws_account_id=account_id,
        aws_account_alias=values.get("aws_account_alias"),
        remove_log_streams=remove,
        discard=discard,
    )


def _split_list(element: etree._Element, text: str, report: _Report) -> tuple[str, ...]:
    """Split a comma-separated option; spaces around commas are fine, empty entries are not."""
    entries = [entry.strip() for entry in text.split(",")]
    if not text or any(not entry for entry in entries):
        report.error(element, f"{element.tag} has an empty entry: {_show(text)}")
        return ()
    unique: list[str] = []
    for entry in entries:
        if entry in unique:
            report.warn(element, f"{element.tag} lists {_show(entry)} more than once")
        else:
            unique.append(entry)
    return tuple(unique)


def _is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text


def _parse_discard(element: etree._Element, text: str, report: _Report) -> DiscardRule | None:
    field_name = element.get("field")
    ok = True
    if field_name is not None:
        field_name = field_name.strip()
        if not field_name:
            report.error(element, "discard_regex field attribute is empty")
            ok = False
        elif any(not part for part in field_name.split(".")):
            report.error(
                element,
                f"invalid discard_regex field {_show(field_name)}: a dotted path has an empty part",
            )
            ok = False
    if not text:
        report.error(element, "discard_regex is empty")
        return None
    try:
        pattern = re.compile(text)
    except (re.error, OverflowError, RecursionError) as error:
        report.error(element, f"invalid discard_regex {_show(text)}: {error}")
        return None
    if not ok:
        return None
    return DiscardRule(pattern=pattern, field=field_name or None)


def _describe_service(service: CloudWatchService) -> list[str]:
    """Lines describing one service for ``summary``; the secret key is never read here."""
    lines = [f"  cloudwatchlogs service at line {service.line}"]
    lines.append(f"    log groups: {', '.join(service.log_groups)}")
    if service.regions:
        lines.append(f"    regions: {', '.join(service.regions)}")
    else:
        lines.append("    regions: all regions of the credentials' partition")
    if service.only_logs_after is None:
        lines.append("    only_logs_after: not set (first run starts at that day's 00:00 UTC)")
    else:
        lines.append(f"    only_logs_after: {service.only_logs_after.isoformat()}")
    if service.aws_profile is not None:
        source = f"profile {service.aws_profile}"
    elif service.access_key is not None:
        source = "static keys (deprecated)"
    else:
        source = "default chain"
    if service.iam_role_arn is not None:
        duration = f", {service.iam_role_duration} s sessions" if service.iam_role_duration else ""
        source = f"role ARN {service.iam_role_arn}{duration}, assumed with {source}"
    lines.append(f"    credentials: {source}")
    if service.sts_endpoint is not None:
        lines.append(f"    sts_endpoint: {service.sts_endpoint}")
    if service.service_endpoint is not None:
        lines.append(f"    service_endpoint: {service.service_endpoint}")
    if service.aws_account_id is not None:
        lines.append(f"    aws_account_id: {service.aws_account_id}")
    if service.aws_account_alias is not None:
        lines.append(f"    aws_account_alias: {service.aws_account_alias}")
    lines.append(f"    remove_log_streams: {_yes(service.remove_log_streams)}")
    if service.discard is None:
        lines.append("    discard: none")
    else:
        target = f"field {service.discard.field}" if service.discard.field else "the message"
        lines.append(f"    discard: {target} matching {service.discard.pattern.pattern!r}")
    return lines
