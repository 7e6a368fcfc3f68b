"""Stage 2 of reading ossec.conf: the manager's rules for aws-s3 wodles, and ours.

Three outcomes, as the manager decides them (``src/config/src/wmodules-aws.c`` and the
scheduling rules it shares with other modules):

- an error: the manager refuses the whole file (an unknown tag, a service type it does not
  know, an empty ``aws_log_groups``, ``disabled`` other than ``yes``/``no``...), so does
  every command here;
- a broken service: the manager starts, but the old script would fail for that service (a
  bad date, an unknown region...): it is not collected, every other service is;
- a warning: the manager goes on and so do we (an empty ``only_logs_after`` is ignored, a
  repeated option takes its last value, an interval that does not fit ``day`` is replaced).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import time

from ..errors import ConfigError, ConfigProblem
from ..model import CloudWatchService
from ..schedule import Daily, Interval, Monthly, Schedule, Weekly
from . import values
from .model import BrokenService, Config, Wodle
from .service import Findings, Option, build_service
from .values import DAY, WEEK, show
from .xmlreader import Element

# 5 minutes: our collection reads only what changed since the last run, so a run is cheap;
# the old module's 5 s default hammers the CloudWatch Logs API for no benefit.
DEFAULT_INTERVAL_SECONDS = 300

SERVICE_TYPES = ("cloudwatchlogs", "inspector")
BUCKET_TYPES = (
    "cloudtrail", "config", "custom", "guardduty", "vpcflow", "cisco_umbrella", "waf", "alb",
    "clb", "nlb", "server_access",
)  # fmt: skip
SUBSCRIBER_TYPES = ("security_lake", "buckets", "security_hub")

_FLAGS = ("disabled", "run_on_start", "skip_on_error", "remove_from_bucket")
_SCHEDULE = ("interval", "day", "wday", "time")
_SERVICE_TAGS = (
    "aws_account_id", "access_key", "aws_account_alias", "secret_key", "aws_profile",
    "iam_role_arn", "iam_role_duration", "only_logs_after", "regions", "aws_log_groups",
    "remove_log_streams", "discard_regex", "sts_endpoint", "service_endpoint",
)  # fmt: skip
_BUCKET_TAGS = (
    "name", "aws_organization_id", "aws_account_id", "remove_from_bucket", "access_key",
    "aws_account_alias", "secret_key", "aws_profile", "iam_role_arn", "iam_role_duration",
    "path", "path_suffix", "only_logs_after", "regions", "discard_regex", "sts_endpoint",
    "service_endpoint",
)  # fmt: skip
_SUBSCRIBER_TAGS = (
    "sqs_name", "external_id", "iam_role_arn", "iam_role_duration", "sts_endpoint",
    "service_endpoint", "aws_profile", "discard_regex",
)  # fmt: skip
_LAST_WINS = "the last one is used, as the manager does"
# Service options the manager sets only from a non-empty value.
_KEPT = frozenset(_SERVICE_TAGS) - {"aws_log_groups", "aws_account_id", "remove_log_streams"}
# The sections the manager's section dispatch knows inside <ossec_config>: these it takes
# whatever they hold (some it does not read at all where aws-s3 is read)...
_SECTIONS = frozenset(
    {
        "syscheck", "rootcheck", "client_buffer", "wodle", "sca", "agent-info",
        "vulnerability-detection", "vulnerability-detector", "indexer", "gcp-pubsub",
        "gcp-bucket", "auth", "logging", "cluster", "active-response",
    }
)  # fmt: skip
# ...and these only when they hold at least one element: empty, they are unknown to it.
_SECTIONS_WITH_CHILDREN = frozenset(
    {
        "global", "localfile", "remote", "agent", "client", "anti_tampering", "socket",
        "agent-upgrade", "task-manager", "wdb", "github", "office365", "ms-graph",
    }
)  # fmt: skip


class _Report:
    """Errors, warnings and broken services of one file, each with its line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def error(self, line: int, message: str) -> None:
        self.errors.append(self.problem(line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(self.problem(line, message))

    def problem(self, line: int, message: str) -> ConfigProblem:
        return ConfigProblem(self.path, line, message)


def build_config(
    roots: Iterable[Element],
    path: str,
    known_regions: Collection[str],
    notes: Iterable[tuple[int, str]] = (),
) -> Config:
    """The configuration of the aws-s3 wodles among ``roots``; raises ConfigError listing
    every error (and every broken service's problems), in line order. ``notes`` are
    warnings of the XML reader, each with its line."""
    report = _Report(path)
    for line, message in notes:
        report.warn(line, message)
    wodles: list[Wodle] = []
    read: list[Wodle] = []  # every wodle read, replaced ones included, for their errors
    for root in roots:
        if root.tag != "ossec_config":
            report.error(root.line, f"unexpected element <{root.tag}> outside <ossec_config>")
            continue
        for section in root.children:
            _check_section(section, report)
            if section.tag == "wodle" and _is_aws_wodle(section, report):
                read.append(_read_wodle(section, report, known_regions))
                _keep(wodles, section, read[-1], report)
    if report.errors:
        broken = [p for wodle in read for service in wodle.broken for p in service.problems]
        every = dict.fromkeys((*report.errors, *broken))  # once each, in the order found
        raise ConfigError(sorted(every, key=lambda p: p.line))
    warnings = dict.fromkeys(sorted(report.warnings, key=lambda p: p.line))
    return Config(path=path, wodles=tuple(wodles), warnings=tuple(warnings))


def _check_section(section: Element, report: _Report) -> None:
    """The manager's section dispatch: it refuses the whole file at a section it does not
    know, and at one of those it reads only with elements inside, when it has none. What
    the sections hold, apart from aws-s3 wodles, is not checked here."""
    if section.tag in _SECTIONS:
        return
    if section.tag in _SECTIONS_WITH_CHILDREN:
        if not section.children:
            report.error(
                section.line,
                f"<{section.tag}> holds no element: the manager refuses the file at an "
                "empty one (it reads it only with elements inside)",
            )
        return
    report.error(
        section.line, f"unknown section <{section.tag}>: the manager refuses the file at it"
    )


def _keep(wodles: list[Wodle], section: Element, wodle: Wodle, report: _Report) -> None:
    """Add a wodle as the manager keeps its modules: it finds a module by its tag, and every
    aws-s3 module, whatever the block's name, gets the tag ``aws-s3``; so a block named
    ``aws-s3`` replaces the first aws-s3 module read so far, while one named
    ``aws-cloudtrail`` (never found by that name) always adds a module."""
    if section.get("name") == "aws-s3" and wodles:
        report.warn(
            section.line,
            f"this aws-s3 wodle replaces the one on line {wodles[0].line}, as the manager "
            'replaces it: only the last <wodle name="aws-s3"> of the file runs',
        )
        wodles[0] = wodle
    else:
        wodles.append(wodle)


def _is_aws_wodle(section: Element, report: _Report) -> bool:
    """Whether a ``<wodle>`` is an aws-s3 one; the manager refuses one without a name."""
    if not section.attributes:
        report.error(section.line, '<wodle> needs a name attribute (e.g. name="aws-s3")')
        return False
    key, name = section.attributes[0]
    if key != "name":
        report.error(section.line, f"the first attribute of <wodle> must be name, not {show(key)}")
        return False
    if name == "aws-cloudtrail":
        report.warn(section.line, "wodle name aws-cloudtrail is deprecated: rename it aws-s3")
        return True
    if name != "aws-s3" and name.strip() in ("aws-s3", "aws-cloudtrail"):
        report.warn(
            section.line,
            f"<wodle name={show(name)}> is ignored, as the manager ignores it: "
            "spaces count in the name",
        )
    return name == "aws-s3"


def _read_wodle(wodle: Element, report: _Report, known_regions: Collection[str]) -> Wodle:
    flags: dict[str, bool] = {}
    timing: list[Element] = []
    seen: dict[str, int] = {}
    services: list[CloudWatchService] = []
    broken: list[BrokenService] = []
    ignored: list[tuple[int, str]] = []
    for child in wodle.children:
        tag = child.tag
        if tag in _FLAGS or tag in _SCHEDULE:
            _repeated(child, seen, report)
            if tag in _SCHEDULE:
                timing.append(child)
                continue
            try:
                flags[tag] = values.parse_yes_no(tag, child.text)
            except ValueError as error:
                report.error(child.line, str(error))
        elif tag in ("access_key", "secret_key"):
            ignored.append((child.line, f"<{tag}> (the legacy bucket's)"))
        elif tag == "bucket":
            ignored.append((child.line, _check_bucket(child, report)))
        elif tag == "subscriber":
            kind = _kind(child, SUBSCRIBER_TYPES, report)  # checked first, as the manager does
            if kind is not None:
                _check_subscriber(child, kind, report)
            ignored.append((child.line, _label(child)))
        elif tag == "service":
            kind = _kind(child, SERVICE_TYPES, report)
            options = _service_options(child, kind or "", report) if kind else {}
            if kind == "cloudwatchlogs":
                found = Findings()
                service = build_service(options, child.line, found, known_regions)
                for line, message in found.warnings:
                    report.warn(line, message)
                if service is not None:
                    services.append(service)
                else:
                    errors = sorted(found.errors, key=lambda error: error[0])
                    problems = tuple(report.problem(line, text) for line, text in errors)
                    broken.append(BrokenService(child.line, problems))
            elif kind is not None:
                ignored.append((child.line, _label(child)))
        else:
            report.error(child.line, f"unknown option <{tag}> in aws-s3 wodle")
    if not any(child.tag in ("service", "bucket", "subscriber") for child in wodle.children):
        report.error(
            wodle.line, "aws-s3 wodle needs at least one <service>, <bucket> or <subscriber>"
        )
    if ignored:
        listed = ", ".join(f"{label} (line {line})" for line, label in ignored)
        report.warn(
            ignored[0][0],
            "this collector handles only CloudWatch Logs "
            f'(<service type="cloudwatchlogs">); {listed} ignored',
        )
    return Wodle(
        line=wodle.line,
        disabled=flags.get("disabled", False),
        schedule=_schedule(timing, flags.get("run_on_start", True), report),
        skip_on_error=flags.get("skip_on_error", False),
        services=tuple(services),
        broken=tuple(broken),
    )


def _repeated(child: Element, seen: dict[str, int], report: _Report) -> None:
    """Warn about an option set a second time; the manager keeps the last one."""
    if child.tag in seen:
        report.warn(
            child.line,
            f"<{child.tag}> is set again (first on line {seen[child.tag]}); {_LAST_WINS}",
        )
    seen[child.tag] = child.line


def _label(child: Element) -> str:
    kind = child.get("type")
    return f'<{child.tag} type="{kind}">' if kind is not None else f"<{child.tag}>"


def _kind(child: Element, known: tuple[str, ...], report: _Report) -> str | None:
    """The type of a service, bucket or subscriber, as the manager checks it: the first
    attribute must be ``type``, and its value one it knows, exactly."""
    what = child.tag
    if not child.attributes:
        report.error(child.line, f'<{what}> needs a type attribute, e.g. type="{known[0]}"')
        return None
    key, kind = child.attributes[0]
    if key != "type":
        report.error(
            child.line,
            f"the first attribute of <{what}> must be type, not {show(key)} "
            "(the manager reads only the first)",
        )
        return None
    for extra, _ in child.attributes[1:]:
        report.warn(child.line, f"attribute {show(extra)} of <{what}> is ignored")
    if kind not in known:
        report.error(
            child.line, f"unknown {what} type {show(kind)}: the manager knows {', '.join(known)}"
        )
        return None
    return kind


def _service_options(service: Element, kind: str, report: _Report) -> dict[str, Option]:
    """The options of a service, checked as the manager checks them (for both types)."""
    options: dict[str, Option] = {}
    seen: dict[str, int] = {}
    for child in service.children:
        tag = child.tag
        if tag not in _SERVICE_TAGS:
            report.error(child.line, f"unknown option <{tag}> in {kind} service")
            continue
        previous = options.get(tag)
        if previous is not None and previous.text and child.text == "" and tag in _KEPT:
            # the manager sets these only from a value: an empty copy leaves the earlier one
            report.warn(child.line, _kept_message(tag, previous.line))
            continue
        _repeated(child, seen, report)
        field = child.get("field")
        # the manager sets a discard field only from a non-empty attribute
        kept = previous.field if previous is not None and previous.text else None
        if tag == "discard_regex" and child.text and not field and kept:
            report.warn(
                child.line,
                f"discard_regex has no field: the field {show(kept)} of line "
                f"{previous.line if previous else 0} goes on applying, as the manager keeps it",
            )
            field = kept
        if tag in ("aws_log_groups", "aws_account_id") and child.text == "":
            report.error(child.line, f"{tag} is empty")
        if tag == "remove_log_streams":
            try:
                values.parse_yes_no(tag, child.text)
            except ValueError as error:
                report.error(child.line, str(error))
                continue
        if tag == "discard_regex" and child.text and not field and kind != "cloudwatchlogs":
            report.error(child.line, f"discard_regex of an {kind} service needs a field attribute")
        options[tag] = Option(child.text, child.line, field, nested=bool(child.children))
    return options


def _kept_message(tag: str, line: int) -> str:
    """The warning for an empty copy of an option set before, which the manager ignores."""
    kept = f"the value on line {line} is kept, as the manager keeps it"
    if tag == "discard_regex":
        return f"No value was provided for 'discard_regex': {kept}"
    return f"{tag} is empty and ignored: {kept}"


def _check_bucket(bucket: Element, report: _Report) -> str:
    """Apply the manager's rules to a bucket (not collected here); returns its label."""
    if not bucket.attributes:
        if bucket.text == "":
            report.error(bucket.line, "<bucket> without a type attribute needs a bucket name")
        return "<bucket>"
    if not bucket.children:  # the manager reads nothing more of it
        return _label(bucket)
    if _kind(bucket, BUCKET_TYPES, report) is None:
        return _label(bucket)
    for child in bucket.children:
        tag = child.tag
        if tag not in _BUCKET_TAGS:
            report.error(child.line, f"unknown option <{tag}> in bucket")
        elif tag in ("name", "aws_organization_id", "aws_account_id") and child.text == "":
            report.error(child.line, f"{tag} of a bucket is empty")
        elif tag == "remove_from_bucket" and child.text not in ("yes", "no"):
            report.error(child.line, f"invalid {tag} {show(child.text)}: expected yes or no")
        elif tag == "discard_regex" and child.text and not child.get("field"):
            report.error(child.line, "discard_regex of a bucket needs a field attribute")
    return _label(bucket)


def _check_subscriber(subscriber: Element, kind: str, report: _Report) -> None:
    """Apply the manager's rules to a subscriber (not collected here)."""
    for child in subscriber.children:
        tag = child.tag
        if tag not in _SUBSCRIBER_TAGS:
            report.error(child.line, f"unknown option <{tag}> in subscriber")
        elif tag in ("sqs_name", "external_id", "iam_role_arn") and child.text == "":
            report.error(child.line, f"{tag} of a subscriber is empty")
        elif tag == "discard_regex" and kind == "security_lake":
            report.error(child.line, "discard_regex is not available for security_lake")


def _schedule(timing: list[Element], run_on_start: bool, report: _Report) -> Schedule:
    """The manager's scheduling rules, over ``day``, ``wday``, ``time`` and ``interval`` in
    the order written (each one checked, the last of each kind used; once an interval in
    months is read, later ones count months too): ``day`` counts months, ``wday`` weeks,
    ``time`` alone days; an interval that does not fit is replaced, with a warning, as the
    manager does."""
    day: int | None = None
    wday: int | None = None
    clock: time | None = None
    value: int | None = None  # the manager's unsigned interval: seconds, or months
    months = False
    element: Element | None = None  # the last interval read
    day_element: Element | None = None
    wday_element: Element | None = None
    for child in timing:
        try:
            if child.tag == "day":
                day, day_element = values.parse_day(child.text), child
            elif child.tag == "wday":
                wday, wday_element = values.parse_wday(child.text), child
            elif child.tag == "time":
                clock = values.parse_time(child.text)
            else:
                interval = values.read_interval(child.text)
        except ValueError as error:
            report.error(child.line, str(error))
            continue
        if child.tag == "day" and day != int(child.text):
            report.warn(
                child.line,
                f"day {show(child.text)}: the manager reads it as {day} (the number is cut "
                "to a C int)",
            )
        if child.tag != "interval":
            continue
        shown = show(child.text.strip(values.C_SPACE))
        if months and not interval.months:
            report.warn(
                child.line,
                f"interval {shown} comes after one in months (M): the manager goes on "
                f"counting months, so it means {interval.value} months",
            )
        value, months, element = interval.value, months or interval.months, child
        for note in interval.notes:
            report.warn(child.line, f"interval {shown}: {note}")
        if interval.rest:
            report.warn(
                child.line,
                f"interval {shown}: {show(interval.rest)} after the unit is ignored, "
                "as the manager ignores it",
            )
    if day_element is not None and wday_element is not None:
        later = max(day_element, wday_element, key=lambda e: e.line)
        report.error(later.line, "<day> and <wday> cannot be used together")
    at = clock or time(0, 0)
    shown = show(element.text.strip(values.C_SPACE)) if element is not None else ""
    if day is not None:
        if element is not None and not months:
            report.warn(
                element.line,
                f"interval {shown} ignored: with <day> the interval counts months "
                "(e.g. 1M); runs are monthly, as the manager makes them",
            )
        every = value if months and value else 1
        return Monthly(day=day, at=at, every=every, run_on_start=run_on_start)
    if wday is not None:
        weeks = _whole(value, WEEK)
        if element is not None and weeks is None:
            report.warn(
                element.line,
                f"interval {shown} ignored: with <wday> the interval counts whole weeks "
                "(e.g. 1w); runs are weekly, as the manager makes them",
            )
        return Weekly(weekday=wday, at=at, every=weeks or 1, run_on_start=run_on_start)
    if clock is not None:
        days = _whole(value, DAY)
        if element is not None and days is None:
            report.warn(
                element.line,
                f"interval {shown} ignored: with <time> the interval counts whole days "
                "(e.g. 1d); runs are daily, as the manager makes them",
            )
        return Daily(at=at, every=days or 1, run_on_start=run_on_start)
    if months and element is not None:
        report.warn(
            element.line,
            f"interval {shown} without <day>: runs on day 1 of the month at 00:00, "
            "as the manager makes them",
        )
        return Monthly(day=1, every=value or 1, run_on_start=run_on_start)
    if value == 0 and element is not None:
        report.error(
            element.line,
            f"interval {shown} is 0 s once wrapped at 2**32: the manager reads the file, but "
            "its modules daemon exits when it schedules this wodle",
        )
    return Interval(seconds=value or DEFAULT_INTERVAL_SECONDS, run_on_start=run_on_start)


def _whole(value: int | None, unit: int) -> int | None:
    """The manager's test that an interval is a whole number of days or weeks, made on the
    value as a C int (above 2**31 it is negative), then the unsigned value divided."""
    if value is None:
        return None
    signed = value - values.UINT_LIMIT if value >= values.UINT_LIMIT // 2 else value
    if signed % unit:
        return None
    return value // unit or None
