"""Stage 3 of reading ossec.conf: the frozen configuration that the rest of aws-wodle uses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ..errors import ConfigProblem
from ..schedule import Schedule

# The one statement of what skip_on_error means here (the old module's switch to go on past a
# failure); check-config's summary, `legacy --help` and the README all say this.
SKIP_ON_ERROR = (
    "default no; changes nothing here: aws-wodle always keeps going past a failing log "
    "group, region or service, and reports each failure"
)


@dataclass(frozen=True)
class DiscardRule:
    """Drop events whose message (or a dotted JSON field of it) matches a regex from its start.

    As the old module does: with a ``field``, a message that is JSON is dropped when the field
    (``a.b.c`` through nested objects) holds a match, and a message that is not JSON is matched
    as a whole; without a field, the whole message is matched, JSON or not.
    """

    pattern: re.Pattern[str]
    field: str | None

    def matched_in(self, message: str) -> Literal["field", "message"] | None:
        """Where the regex matched ``message``: in the field, in the whole message, or nowhere
        (the message is kept)."""
        if self.field is None:
            return "message" if self.pattern.match(message) else None
        try:
            value: object = json.loads(message)
        except (ValueError, RecursionError):
            return "message" if self.pattern.match(message) else None
        for part in self.field.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        text = value if isinstance(value, str) else json.dumps(value)
        return "field" if self.pattern.match(text) else None

    def discards(self, message: str) -> bool:
        """Tell whether ``message`` is to be dropped (see the class)."""
        return self.matched_in(message) is not None


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
class BrokenService:
    """A ``<service type="cloudwatchlogs">`` that the manager accepts but that cannot be
    collected as written (a bad date, an unknown region...): the old module's run for it
    would fail. It is not collected; ``problems`` say why, each with its file and line."""

    line: int
    problems: tuple[ConfigProblem, ...]


@dataclass(frozen=True)
class Wodle:
    """One ``<wodle name="aws-s3">`` block: its CloudWatch Logs services, valid and broken.

    ``skip_on_error`` is kept as configured; see ``SKIP_ON_ERROR`` for what it means here."""

    line: int
    disabled: bool
    schedule: Schedule
    skip_on_error: bool
    services: tuple[CloudWatchService, ...]
    broken: tuple[BrokenService, ...] = ()


@dataclass(frozen=True)
class Config:
    """Every aws-s3 wodle of a file, disabled ones included, and the non-fatal problems."""

    path: str
    wodles: tuple[Wodle, ...]
    warnings: tuple[ConfigProblem, ...]

    @property
    def broken(self) -> tuple[BrokenService, ...]:
        """Every service that cannot be collected as written, disabled wodles included."""
        return tuple(service for wodle in self.wodles for service in wodle.broken)
