"""The options of one CloudWatch Logs service, as written, into a ``CloudWatchService``.

Used for ``<service type="cloudwatchlogs">`` in ossec.conf and for the old module's command
line (``legacy``): both hand in the options by their ossec.conf names, as text. What is
refused here the manager accepts (it passes the text on to the old script): such a service
cannot be collected, but the others still are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from ..model import CloudWatchService, DiscardRule
from ..poll.groups import GroupArn, parse_entry
from . import values
from .values import show

# The manager's own warning for an empty <discard_regex/>, word for word.
EMPTY_DISCARD_REGEX = "No value was provided for 'discard_regex'. No event will be skipped."

_T = TypeVar("_T")

# Bytes of the file that are not UTF-8 (decoded with surrogateescape).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# Options that the manager refuses empty; blank (white space only) they pass it, and here
# they are a problem of the service.
_REQUIRED_VALUES = ("aws_log_groups", "aws_account_id")
_EMPTY_MEANS = {
    "regions": "every region of the credentials' partition is searched",
    "only_logs_after": "the first collection of a log group starts at 00:00 UTC of that day",
}


@dataclass(frozen=True)
class Option:
    """One option as written: its text (not stripped), its line (0 on a command line), the
    ``field`` attribute of ``discard_regex``, and whether it held elements, not a value."""

    text: str
    line: int = 0
    field: str | None = None
    nested: bool = False


@dataclass
class Findings:
    """What reading found, each with its line: errors (the service cannot be collected) and
    warnings."""

    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.errors.append((line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append((line, message))


def build_service(
    options: Mapping[str, Option], line: int, found: Findings, known_regions: Collection[str]
) -> CloudWatchService | None:
    """The service that these options describe, or None when ``found`` got an error.

    ``options`` are keyed by their ossec.conf names (``aws_log_groups``, ``regions``...);
    ``line`` is the service's own; ``known_regions`` holds every region valid for CloudWatch
    Logs in any partition.
    """
    errors_before = len(found.errors)
    texts = _texts(options, found)

    log_groups: tuple[str, ...] = ()
    if "aws_log_groups" not in options:
        found.error(line, "cloudwatchlogs service needs <aws_log_groups>")
    elif "aws_log_groups" in texts:
        log_groups = _list(options["aws_log_groups"], "aws_log_groups", texts, found)
        _check_entries(log_groups, options, found, known_regions)

    regions: tuple[str, ...] = ()
    if "regions" in texts:
        regions = _list(options["regions"], "regions", texts, found)
        for region in regions:
            if region not in known_regions:
                found.error(
                    options["regions"].line, f"unknown region {show(region)} for CloudWatch Logs"
                )

    only_logs_after: datetime | None = None
    if "only_logs_after" in texts:
        try:
            only_logs_after = values.parse_date(texts["only_logs_after"])
        except ValueError:
            found.error(
                options["only_logs_after"].line,
                f"invalid only_logs_after {show(texts['only_logs_after'])}: "
                "expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date",
            )

    access_key, secret_key = texts.get("access_key"), texts.get("secret_key")
    if access_key and not secret_key:
        found.error(options["access_key"].line, "access_key needs secret_key")
    elif secret_key and not access_key:
        found.error(options["secret_key"].line, "secret_key needs access_key")
    elif access_key and secret_key:
        found.warn(
            options["access_key"].line,
            "access_key/secret_key are deprecated; use aws_profile or iam_role_arn",
        )

    role_arn = _value(values.parse_role_arn, "iam_role_arn", options, texts, found)
    role_duration = _value(values.parse_role_duration, "iam_role_duration", options, texts, found)
    if "iam_role_duration" in texts and "iam_role_arn" not in texts:
        found.error(options["iam_role_duration"].line, "iam_role_duration needs iam_role_arn")
    endpoints = {
        name: _value(partial(values.parse_endpoint, name), name, options, texts, found)
        for name in ("sts_endpoint", "service_endpoint")
    }
    account_id = _value(values.parse_account_id, "aws_account_id", options, texts, found)
    discard = _discard(options, texts, found)

    if len(found.errors) != errors_before:
        return None
    return CloudWatchService(
        line=line,
        log_groups=log_groups,
        regions=regions,
        only_logs_after=only_logs_after,
        aws_profile=texts.get("aws_profile"),
        access_key=access_key,
        secret_key=secret_key,
        iam_role_arn=role_arn,
        iam_role_duration=role_duration,
        sts_endpoint=endpoints["sts_endpoint"],
        service_endpoint=endpoints["service_endpoint"],
        aws_account_id=account_id,
        aws_account_alias=texts.get("aws_account_alias"),
        remove_log_streams="remove_log_streams" in options
        and options["remove_log_streams"].text == "yes",
        discard=discard,
    )


def _check_entries(
    entries: tuple[str, ...],
    options: Mapping[str, Option],
    found: Findings,
    known_regions: Collection[str],
) -> None:
    """Each entry of aws_log_groups must be a name, a prefix ending in ``*`` or a log group
    ARN of a known region (the manager passes any text on); another account's groups are
    never deleted, since DeleteLogStream takes no ARN."""
    line = options["aws_log_groups"].line
    remove = "remove_log_streams" in options and options["remove_log_streams"].text == "yes"
    for text in entries:
        try:
            entry = parse_entry(text)
        except ValueError as error:
            found.error(line, str(error))
            continue
        if not isinstance(entry, GroupArn):
            continue
        if entry.region not in known_regions:
            found.error(
                line, f"unknown region {show(entry.region)} for CloudWatch Logs in {show(text)}"
            )
        elif remove:
            found.warn(
                line,
                f"remove_log_streams does not apply to {show(text)}: DeleteLogStream takes no "
                "ARN, so the streams of a group named by ARN are kept",
            )


def _texts(options: Mapping[str, Option], found: Findings) -> dict[str, str]:
    """The stripped text of every option that holds one; empty ones are warned about and
    left out, as the manager leaves them out."""
    texts: dict[str, str] = {}
    for name, option in options.items():
        if name == "remove_log_streams":
            continue
        if option.nested:
            found.error(option.line, f"<{name}> must hold a value, not elements")
            continue
        # white space is trimmed as the manager's readers see it, ASCII only; a regex is
        # kept as written, white space and all
        text = option.text if name == "discard_regex" else option.text.strip(values.C_SPACE)
        if _NOT_UTF8.search(text):
            found.error(option.line, f"{name} is not valid UTF-8; save the file as UTF-8")
            continue
        if text:
            texts[name] = text
        elif name in _REQUIRED_VALUES:
            found.error(option.line, f"{name} is empty")
        elif name == "discard_regex":
            found.warn(option.line, EMPTY_DISCARD_REGEX)
        elif name in _EMPTY_MEANS:
            found.warn(option.line, f"{name} is empty and ignored: {_EMPTY_MEANS[name]}")
        else:
            found.warn(option.line, f"{name} is empty and ignored, as the manager ignores it")
    return texts


def _list(option: Option, name: str, texts: dict[str, str], found: Findings) -> tuple[str, ...]:
    try:
        entries, repeated = values.split_list(name, texts[name])
    except ValueError as error:
        found.error(option.line, str(error))
        return ()
    for entry in repeated:
        found.warn(option.line, f"{name} lists {show(entry)} more than once")
    return tuple(entries)


def _value(
    parse: Callable[[str], _T],
    name: str,
    options: Mapping[str, Option],
    texts: dict[str, str],
    found: Findings,
) -> _T | None:
    """The option's text read by ``parse``, None when absent or refused (with an error)."""
    if name not in texts:
        return None
    try:
        return parse(texts[name])
    except ValueError as error:
        found.error(options[name].line, str(error))
        return None


def _discard(
    options: Mapping[str, Option], texts: dict[str, str], found: Findings
) -> DiscardRule | None:
    if "discard_regex" not in texts:
        return None
    option = options["discard_regex"]
    field_name: str | None = None
    if option.field is not None and option.field.strip(values.C_SPACE):
        try:
            field_name = values.parse_discard_field(option.field.strip(values.C_SPACE))
        except ValueError as error:
            found.error(option.line, str(error))
    elif option.field is not None:
        found.warn(
            option.line,
            "the field attribute of discard_regex is empty and ignored, as the manager "
            "ignores it: the regex is matched against the whole message",
        )
    try:
        pattern = values.compile_regex(texts["discard_regex"])
    except ValueError as error:
        found.error(option.line, str(error))
        return None
    return DiscardRule(pattern=pattern, field=field_name)
