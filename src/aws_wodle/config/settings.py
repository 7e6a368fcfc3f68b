"""aws-wodle's own settings file, ``<home>/etc/aws-wodle.toml``, merged with the flags.

The manager refuses any tag it does not know inside ``<wodle name="aws-s3">``, so what
ossec.conf cannot hold lives here: the run options that are also flags (a flag given on
the command line overrides the file) and per-group options (``[[group]]``)::

    lookback = "15m"            # durations: "90s", "15m", "1h", or whole seconds
    late_every = "5m"           # how often late events are swept up (the default; 0: every cycle)
    settle = "30s"
    remove_idle = "10m"
    discover_every = "10m"      # how often a prefix entry is listed again, at most
    queue_wait = "60s"          # run --once: how long to wait for a manager that is away
    metrics = "127.0.0.1:9109"
    log_level = "info"
    log_format = "syslog"

    [rates]                     # requests per second per account and region
    FilterLogEvents = 5

    [[group]]                   # the first [[group]] that fits a group gives its options
    match = "/aws/lambda/*"     # a name, a prefix ending in *, or an ARN
    include_streams = ["2024/"] # stream name prefixes
    exclude_streams = ["health"]
    envelope = true

    [[kinesis]]                 # push: a stream fed by subscription filters (see push/)
    stream = "siem-logs"        # a name, or the stream's ARN
    region = "us-east-1"
    lease_table = "aws-wodle-siem-logs"
    lease_period = "10s"

A missing file means the defaults (unless it was named with ``--settings``). Every problem
is reported with the file and line, all at once, as ossec.conf's are.

Read by stages, as ossec.conf is: ``tomlreader`` (the bytes into a TOML document and the
line of each key), ``settingsrules`` with ``settingskinesis`` and ``settingsvalues`` (each
key checked and converted, every problem with its line), ``settingsmodel`` (the frozen
result) and ``settingsdescribe`` (in words, for ``check-config``). This module runs them
over a file and merges the result with the flags.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..aws.budget import DEFAULT_RATES
from ..errors import ConfigError, ConfigProblem
from . import perms
from .settingsdescribe import describe, describe_source
from .settingskinesis import MIN_LEASE_PERIOD
from .settingsmodel import DEFAULTS, DURATIONS, RunOptions, SettingsFile
from .settingsrules import LOG_LEVELS, build_settings, unmatched_rules
from .settingsvalues import parse_duration, show_duration
from .tomlreader import MAX_FILE_BYTES, read_toml

__all__ = [
    "DURATIONS",
    "LOG_LEVELS",
    "MAX_FILE_BYTES",
    "MIN_LEASE_PERIOD",
    "RunOptions",
    "SettingsFile",
    "describe",
    "describe_source",
    "load_settings",
    "merge",
    "parse_duration",
    "parse_settings",
    "show_duration",
    "unmatched_rules",
]


def load_settings(path: str, *, required: bool, strict_perms: bool = True) -> SettingsFile:
    """Read the settings file at ``path``; a missing file means the defaults unless
    ``required`` (it was named on the command line). Raises ConfigError with every
    problem found, each with the file and line; a file that other users could change is
    refused before it is read (``config.perms``), or only warned about without
    ``strict_perms``."""
    try:
        with open(path, "rb") as handle:
            loose = perms.check(path, os.fstat(handle.fileno()), strict=strict_perms)
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        if error.errno == errno.ENOENT and not required:
            return SettingsFile(path)
        reason = error.strerror or str(error)
        raise ConfigError([ConfigProblem(path, 0, f"cannot read the file: {reason}")]) from None
    settings = parse_settings(data, path)
    if loose is None:
        return settings
    return replace(settings, warnings=(loose, *settings.warnings))


def parse_settings(data: bytes, path: str) -> SettingsFile:
    """Parse a settings file's content (see the module's docstring)."""
    document, lines = read_toml(data, path)
    return build_settings(document, path, lines)


def merge(
    settings: SettingsFile, flags: Mapping[str, Any], rates: Mapping[str, float]
) -> RunOptions:
    """The run options: ``flags`` (None where a flag was not given) over ``settings`` over
    the defaults; ``rates`` from ``--rate`` over the file's ``[rates]``."""
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, default in DEFAULTS.items():
        flag = flags.get(name)
        in_file = getattr(settings, name)
        if flag is not None:
            chosen[name], sources[name] = flag, f"--{name.replace('_', '-')}"
        elif in_file is not None:
            chosen[name], sources[name] = in_file, _where(settings, name)
        else:
            chosen[name], sources[name] = default, "default"
    merged_rates = dict(DEFAULT_RATES)
    for name in DEFAULT_RATES:
        sources[f"rates.{name}"] = "default"
    for name, rate in settings.rates.items():
        merged_rates[name] = rate
        sources[f"rates.{name}"] = _where(settings, f"rates.{name}")
    for name, rate in rates.items():
        merged_rates[name] = rate
        sources[f"rates.{name}"] = "--rate"
    return RunOptions(settings=settings, rates=merged_rates, sources=sources, **chosen)


def _where(settings: SettingsFile, key: str) -> str:
    line = settings.lines.get(key, 0)
    return f"{settings.path}:{line}" if line else settings.path
