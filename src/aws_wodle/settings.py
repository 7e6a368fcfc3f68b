"""aws-wodle's own settings file, ``<home>/etc/aws-wodle.toml``, merged with the flags.

The manager refuses any tag it does not know inside ``<wodle name="aws-s3">``, so what
ossec.conf cannot hold lives here: the run options that are also flags (a flag given on
the command line overrides the file) and per-group options (``[[group]]``)::

    lookback = "15m"            # durations: "90s", "15m", "1h", or whole seconds
    settle = "30s"
    remove_idle = "10m"
    discover_every = "10m"      # how often a prefix entry is listed again, at most
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

A missing file means the defaults (unless it was named with ``--settings``). Every problem
is reported with the file and line, all at once, as ossec.conf's are.
"""

from __future__ import annotations

import errno
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import logsetup
from .budget import DEFAULT_RATES
from .discovery import DEFAULT_DISCOVER_SECONDS
from .errors import ConfigError, ConfigProblem
from .groups import GroupOptions, GroupRule, GroupRules, check_match
from .metrics import parse_address
from .pipeline import (
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_REMOVE_IDLE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
)
from .tomllines import Path, key_lines, line_of, syntax_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, a dependency on Python 3.10 only
    import tomli as tomllib

# A settings file is a few hundred bytes; anything this large is a mistake.
MAX_FILE_BYTES = 1024 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
DURATIONS = ("lookback", "settle", "remove_idle", "discover_every")
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TOP_KEYS = (*DURATIONS, "metrics", "log_level", "log_format", "rates", "group")
_GROUP_KEYS = ("match", "include_streams", "exclude_streams", "envelope")


def parse_duration(text: str) -> float:
    """A duration: a whole number with an optional unit s, m, h, d or w (seconds)."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(
            f"invalid duration '{text}': a number with an optional suffix s, m, h, d or w"
        )
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def show_duration(seconds: float) -> str:
    """A duration as the file writes it (``15m``, ``90s``)."""
    whole = int(seconds)
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{suffix}"
    return f"{whole}s"


@dataclass(frozen=True)
class SettingsFile:
    """What a settings file says; None (or empty) where it says nothing. ``lines``: the
    line of each top-level key and rate, for ``check-config``."""

    path: str
    found: bool = False
    lookback: float | None = None
    settle: float | None = None
    remove_idle: float | None = None
    discover_every: float | None = None
    metrics: tuple[str, int] | None = None
    log_level: str | None = None
    log_format: str | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    groups: GroupRules = field(default_factory=GroupRules)
    lines: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[ConfigProblem, ...] = ()


def load_settings(path: str, *, required: bool) -> SettingsFile:
    """Read the settings file at ``path``; a missing file means the defaults unless
    ``required`` (it was named on the command line). Raises ConfigError with every
    problem found, each with the file and line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        if error.errno == errno.ENOENT and not required:
            return SettingsFile(path)
        reason = error.strerror or str(error)
        raise ConfigError([ConfigProblem(path, 0, f"cannot read the file: {reason}")]) from None
    return parse_settings(data, path)


def parse_settings(data: bytes, path: str) -> SettingsFile:
    """Parse a settings file's content (see the module's docstring)."""
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([ConfigProblem(path, 0, "file too large: more than 1 MiB")])
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(path, line, "not UTF-8: save it as UTF-8")]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, message = syntax_error(str(error), text.count("\n") + 1)
        problem = ConfigProblem(path, line, f"TOML syntax error: {message}")
        raise ConfigError([problem]) from None
    return _Reader(path, key_lines(text)).read(document)


class _Reader:
    """Checks a parsed document key by key, collecting every problem with its line."""

    def __init__(self, path: str, lines: dict[Path, int]) -> None:
        self.path = path
        self.lines = lines
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def _line(self, *where: str | int) -> int:
        return line_of(self.lines, where)

    def error(self, message: str, *where: str | int) -> None:
        self.errors.append(ConfigProblem(self.path, self._line(*where), message))

    def read(self, document: dict[str, Any]) -> SettingsFile:
        values: dict[str, Any] = {}
        for key, value in document.items():
            if key not in _TOP_KEYS:
                self.error(f"unknown setting '{key}' (known: {', '.join(_TOP_KEYS)})", key)
            elif key in DURATIONS:
                values[key] = self._value(key, value, _duration)
            elif key == "metrics":
                values[key] = self._value(key, value, _metrics)
            elif key == "log_level":
                values[key] = self._value(key, value, _choice(key, LOG_LEVELS))
            elif key == "log_format":
                values[key] = self._value(key, value, _choice(key, logsetup.FORMATS))
        rates = self._rates(document.get("rates", {}))
        groups = self._groups(document.get("group", []))
        if self.errors:
            raise ConfigError(sorted(self.errors, key=lambda p: p.line))
        lines = {key: self._line(key) for key in document}
        lines.update({f"rates.{name}": self._line("rates", name) for name in rates})
        return SettingsFile(
            self.path,
            found=True,
            rates=rates,
            groups=groups,
            lines=lines,
            warnings=tuple(self.warnings),
            **{key: value for key, value in values.items() if value is not None},
        )

    def _value(
        self, key: str, value: object, parse: Callable[[object], Any], *at: str | int
    ) -> Any:
        try:
            return parse(value)
        except ValueError as error:
            label = f"[[group]] {key}" if at[:1] == ("group",) else ".".join(map(str, (*at, key)))
            self.error(f"{label}: {error}", *at, key)
            return None

    def _rates(self, table: object) -> dict[str, float]:
        if not isinstance(table, dict):
            self.error("rates must be a table: [rates] with OPERATION = PER_SECOND", "rates")
            return {}
        rates: dict[str, float] = {}
        for name, value in table.items():
            if name not in DEFAULT_RATES:
                known = ", ".join(sorted(DEFAULT_RATES))
                self.error(f"unknown operation '{name}' in [rates] (one of {known})", "rates", name)
                continue
            rate = self._value(name, value, _rate, "rates")
            if rate is not None:
                rates[name] = rate
        return rates

    def _groups(self, tables: object) -> GroupRules:
        if not isinstance(tables, list):
            self.error("group must be written [[group]], one per group or prefix", "group")
            return GroupRules()
        rules: list[GroupRule] = []
        seen: dict[str, int] = {}
        for index, table in enumerate(tables):
            rule = self._group(index, table)
            if rule is None:
                continue
            if rule.match in seen:
                self.warnings.append(
                    ConfigProblem(
                        self.path,
                        rule.line,
                        f"[[group]] match '{rule.match}' is also at line {seen[rule.match]}: "
                        "the first one fitting a group is used, so this one never is",
                    )
                )
            else:
                seen[rule.match] = rule.line
            rules.append(rule)
        return GroupRules(tuple(rules))

    def _group(self, index: int, table: object) -> GroupRule | None:
        line = self._line("group", index)
        if not isinstance(table, dict):
            self.error("group must be written [[group]], one per group or prefix", "group")
            return None
        before = len(self.errors)
        for key in table:
            if key not in _GROUP_KEYS:
                self.error(
                    f"unknown option '{key}' in [[group]] (known: {', '.join(_GROUP_KEYS)})",
                    "group",
                    index,
                    key,
                )
        at = ("group", index)
        match = table.get("match")
        if match is None:
            needs = "[[group]] needs a match: a log group name, a prefix ending in *, or an ARN"
            self.error(needs, *at)
        else:
            self._value("match", match, _match, *at)
        include = self._value("include_streams", table.get("include_streams", []), _prefixes, *at)
        exclude = self._value("exclude_streams", table.get("exclude_streams", []), _prefixes, *at)
        envelope = self._value("envelope", table.get("envelope", False), _flag, *at)
        if len(self.errors) != before:
            return None
        options = GroupOptions(tuple(include), tuple(exclude), bool(envelope))
        return GroupRule(str(match), options, line)


def _duration(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'expected a duration such as "15m" or a number of seconds, got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    return parse_duration(value)


def _metrics(value: object) -> tuple[str, int]:
    if not isinstance(value, str):
        raise ValueError(f'expected "ADDR:PORT" on a loopback address, got {value!r}')
    return parse_address(value)


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if isinstance(value, str) and value.lower() in choices:
            return value.lower()
        raise ValueError(f"invalid {name} {value!r}: one of {', '.join(choices)}")

    return parse


def _rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"invalid rate {value!r}: a number of requests per second, above 0")
    return float(value)


def _match(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a log group name, a prefix ending in * or an ARN, got {value!r}"
        )
    check_match(value)
    return value


def _prefixes(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(
            f'expected a list of stream name prefixes such as ["web-", "api-"], got {value!r}'
        )
    return [str(v) for v in value]


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------
# The file merged with the flags: what a run uses.

_DEFAULTS: dict[str, Any] = {
    "lookback": DEFAULT_LOOKBACK_SECONDS,
    "settle": DEFAULT_SETTLE_SECONDS,
    "remove_idle": DEFAULT_REMOVE_IDLE_SECONDS,
    "discover_every": DEFAULT_DISCOVER_SECONDS,
    "metrics": None,
    "log_level": "info",
    "log_format": None,
}


@dataclass(frozen=True)
class RunOptions:
    """The options a run uses: each flag given, else the file's value, else the default.
    ``sources`` says where each came from (``default``, ``FILE:LINE`` or ``--flag``)."""

    settings: SettingsFile
    lookback: float
    settle: float
    remove_idle: float
    discover_every: float
    metrics: tuple[str, int] | None
    log_level: str
    log_format: str | None
    rates: dict[str, float]
    sources: Mapping[str, str]

    @property
    def groups(self) -> GroupRules:
        return self.settings.groups


def merge(
    settings: SettingsFile, flags: Mapping[str, Any], rates: Mapping[str, float]
) -> RunOptions:
    """The run options: ``flags`` (None where a flag was not given) over ``settings`` over
    the defaults; ``rates`` from ``--rate`` over the file's ``[rates]``."""
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, default in _DEFAULTS.items():
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


def describe(options: RunOptions) -> str:
    """The run options in words, with where each comes from, for ``check-config``."""
    settings = options.settings
    state = "" if settings.found else " (not found: the defaults)"
    lines = [f"settings: {settings.path}{state}"]
    src = options.sources
    for name in DURATIONS:
        lines.append(f"  {name}: {show_duration(getattr(options, name))} ({src[name]})")
    metrics = "off" if options.metrics is None else "{}:{}".format(*options.metrics)
    lines.append(f"  metrics: {metrics} ({src['metrics']})")
    lines.append(f"  log_level: {options.log_level} ({src['log_level']})")
    log_format = options.log_format or "plain on a terminal, else syslog"
    lines.append(f"  log_format: {log_format} ({src['log_format']})")
    rates = ", ".join(
        f"{name}={options.rates[name]:g}/s ({src[f'rates.{name}']})"
        for name in sorted(options.rates)
    )
    lines.append(f"  rates: {rates}")
    for rule in options.groups.rules:
        what = _describe_options(rule.options)
        lines.append(f"  [[group]] at line {rule.line}: match {rule.match}: {what}")
    lines.append("  any other group: raw messages, every stream")
    return "\n".join(lines)


def _describe_options(options: GroupOptions) -> str:
    parts = ["envelope (JSON with the source)" if options.envelope else "raw messages"]
    if options.include_streams:
        parts.append("only streams starting with " + " or ".join(options.include_streams))
    if options.exclude_streams:
        parts.append("not streams starting with " + " or ".join(options.exclude_streams))
    if not options.filters_streams:
        parts.append("every stream")
    return ", ".join(parts)
