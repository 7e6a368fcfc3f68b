"""aws-wodle.toml's frozen results: what the file says, and the options a run uses.

``SettingsFile`` is the file as read (None where it says nothing); ``RunOptions`` is a
run's options once ``settings.merge`` has laid the flags over the file and the file over
``DEFAULTS``, each part's own default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigProblem
from ..manager.forward import QUEUE_WAIT_SECONDS
from ..poll.discovery import DEFAULT_DISCOVER_SECONDS
from ..poll.groups import GroupRules
from ..poll.pipeline import (
    DEFAULT_LATE_EVERY_SECONDS,
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_REMOVE_IDLE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
)
from ..push.source import KinesisSource

DURATIONS = ("lookback", "late_every", "settle", "remove_idle", "discover_every", "queue_wait")

# The run options a flag or the file may set, and their values when neither does.
DEFAULTS: dict[str, Any] = {
    "lookback": DEFAULT_LOOKBACK_SECONDS,
    "late_every": DEFAULT_LATE_EVERY_SECONDS,
    "settle": DEFAULT_SETTLE_SECONDS,
    "remove_idle": DEFAULT_REMOVE_IDLE_SECONDS,
    "discover_every": DEFAULT_DISCOVER_SECONDS,
    "queue_wait": QUEUE_WAIT_SECONDS,
    "metrics": None,
    "log_level": "info",
    "log_format": None,
}


@dataclass(frozen=True)
class SettingsFile:
    """What a settings file says; None (or empty) where it says nothing. ``lines``: the
    line of each top-level key and rate, for ``check-config``."""

    path: str
    found: bool = False
    lookback: float | None = None
    late_every: float | None = None
    settle: float | None = None
    remove_idle: float | None = None
    discover_every: float | None = None
    queue_wait: float | None = None
    metrics: tuple[str, int] | None = None
    log_level: str | None = None
    log_format: str | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    groups: GroupRules = field(default_factory=GroupRules)
    kinesis: tuple[KinesisSource, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[ConfigProblem, ...] = ()


@dataclass(frozen=True)
class RunOptions:
    """The options a run uses: each flag given, else the file's value, else the default.
    ``sources`` says where each came from (``default``, ``FILE:LINE`` or ``--flag``)."""

    settings: SettingsFile
    lookback: float
    late_every: float
    settle: float
    remove_idle: float
    discover_every: float
    queue_wait: float
    metrics: tuple[str, int] | None
    log_level: str
    log_format: str | None
    rates: dict[str, float]
    sources: Mapping[str, str]

    @property
    def groups(self) -> GroupRules:
        return self.settings.groups
