"""Stage 3 of reading ossec.conf: the frozen configuration that the rest of aws-wodle uses."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigProblem
from ..model import CloudWatchService
from ..schedule import Schedule

# The one statement of what skip_on_error means here (the old module's switch to go on past a
# failure); check-config's summary, `legacy --help` and the README all say this.
SKIP_ON_ERROR = (
    "default no; changes nothing here: aws-wodle always keeps going past a failing log "
    "group, region or service, and reports each failure"
)


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
