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
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..aws.budget import DEFAULT_RATES
from ..errors import ConfigError, ConfigProblem
from ..manager.forward import QUEUE_WAIT_SECONDS
from ..poll.discovery import DEFAULT_DISCOVER_SECONDS
from ..poll.groups import (
    Entry,
    GroupArn,
    GroupName,
    GroupOptions,
    GroupPrefix,
    GroupRule,
    GroupRules,
    check_match,
    parse_entry,
)
from ..poll.pipeline import (
    DEFAULT_LATE_EVERY_SECONDS,
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_REMOVE_IDLE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
)
from ..push.source import (
    DEFAULT_BATCH,
    DEFAULT_LEASE_PERIOD,
    LEASE_TABLE_PREFIX,
    KinesisSource,
    arn_region,
    stream_name,
)
from . import Config, perms, values
from .tomllines import Path, key_lines, line_of, syntax_error
from .values import FORMATS, parse_address

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, a dependency on Python 3.10 only
    import tomli as tomllib

# A settings file is a few hundred bytes; anything this large is a mistake.
MAX_FILE_BYTES = 1024 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
DURATIONS = ("lookback", "late_every", "settle", "remove_idle", "discover_every", "queue_wait")
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TOP_KEYS = (*DURATIONS, "metrics", "log_level", "log_format", "rates", "group", "kinesis")
_GROUP_KEYS = ("match", "include_streams", "exclude_streams", "envelope")
_KINESIS_KEYS = (
    "stream",
    "region",
    "lease_table",
    "aws_profile",
    "access_key",
    "secret_key",
    "iam_role_arn",
    "iam_role_duration",
    "sts_endpoint",
    "kinesis_endpoint",
    "dynamodb_endpoint",
    "lease_period",
    "worker_id",
    "batch",
    "envelope",
)
# Kinesis stream names, DynamoDB table names, and a stream's ARN.
_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_STREAM_ARN = re.compile(
    r"arn:aws[a-z-]*:kinesis:([a-z0-9-]+):[0-9]{12}:stream/([A-Za-z0-9_.-]{1,128})"
)
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
# A worker renews every third of the lease period, and needs a few calls to do it.
MIN_LEASE_PERIOD = 3.0


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
                values[key] = self._value(key, value, _choice(key, FORMATS))
        rates = self._rates(document.get("rates", {}))
        groups = self._groups(document.get("group", []))
        kinesis = self._kinesis(document.get("kinesis", []))
        if self.errors:
            raise ConfigError(sorted(self.errors, key=lambda p: p.line))
        lines = {key: self._line(key) for key in document}
        lines.update({f"rates.{name}": self._line("rates", name) for name in rates})
        return SettingsFile(
            self.path,
            found=True,
            rates=rates,
            groups=groups,
            kinesis=kinesis,
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
            if at[:1] in (("group",), ("kinesis",)):
                label = f"[[{at[0]}]] {key}"
            else:
                label = ".".join(map(str, (*at, key)))
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

    def _kinesis(self, tables: object) -> tuple[KinesisSource, ...]:
        if not isinstance(tables, list):
            self.error("kinesis must be written [[kinesis]], one per stream", "kinesis")
            return ()
        sources: list[KinesisSource] = []
        seen: dict[tuple[str, str], int] = {}
        for index, table in enumerate(tables):
            source = self._one_kinesis(index, table)
            if source is None:
                continue
            where = (source.stream_name, source.region)
            if where in seen:
                self.error(
                    f"[[kinesis]] stream {source.stream_name} in {source.region} is also at line "
                    f"{seen[where]}: one worker per stream and process is enough",
                    "kinesis",
                    index,
                )
                continue
            seen[where] = source.line
            sources.append(source)
        return tuple(sources)

    def _one_kinesis(self, index: int, table: object) -> KinesisSource | None:
        line = self._line("kinesis", index)
        if not isinstance(table, dict):
            self.error("kinesis must be written [[kinesis]], one per stream", "kinesis")
            return None
        before = len(self.errors)
        at = ("kinesis", index)
        for key in table:
            if key not in _KINESIS_KEYS:
                known = ", ".join(_KINESIS_KEYS)
                self.error(f"unknown option '{key}' in [[kinesis]] (known: {known})", *at, key)
        texts: dict[str, str] = {}
        for key in _KINESIS_KEYS:
            if key in table and key not in (
                "iam_role_duration",
                "lease_period",
                "batch",
                "envelope",
            ):
                text = self._value(key, table[key], _text, *at)
                if text is not None:
                    texts[key] = text
        stream = texts.get("stream")
        region: str | None = None
        if "stream" not in table:
            self.error("[[kinesis]] needs a stream: its name or ARN", *at)
        elif stream is not None:
            self._value("stream", stream, _stream, *at)
            region = arn_region(stream)
        if "region" in texts:
            given = self._value("region", texts["region"], _region, *at)
            if given is not None and region is not None and given != region:
                self.error(
                    f"[[kinesis]] region: {given} differs from the stream ARN's {region}",
                    *at,
                    "region",
                )
            region = region or given
        elif stream is not None and region is None:
            self.error("[[kinesis]] needs a region (or the stream's ARN)", *at)
        lease_table = None
        if "lease_table" in texts:
            lease_table = self._value("lease_table", texts["lease_table"], _table_name, *at)
        elif stream is not None:
            lease_table = (LEASE_TABLE_PREFIX + stream_name(stream))[:255]
        access_key, secret_key = texts.get("access_key"), texts.get("secret_key")
        if bool(access_key) != bool(secret_key):
            needs = "access_key needs secret_key" if access_key else "secret_key needs access_key"
            self.error(f"[[kinesis]] {needs}", *at, "access_key" if access_key else "secret_key")
        elif access_key:
            self.warnings.append(
                ConfigProblem(
                    self.path,
                    self._line(*at, "access_key"),
                    "[[kinesis]] access_key/secret_key are deprecated; use aws_profile or "
                    "iam_role_arn",
                )
            )
        role = None
        if "iam_role_arn" in texts:
            role = self._value("iam_role_arn", texts["iam_role_arn"], _role_arn, *at)
        duration = None
        if "iam_role_duration" in table:
            duration = self._value(
                "iam_role_duration", table["iam_role_duration"], _role_duration, *at
            )
            if "iam_role_arn" not in table:
                self.error(
                    "[[kinesis]] iam_role_duration needs iam_role_arn", *at, "iam_role_duration"
                )
        endpoints = {
            name: self._value(name, texts[name], _endpoint(name), *at)
            for name in ("sts_endpoint", "kinesis_endpoint", "dynamodb_endpoint")
            if name in texts
        }
        period = DEFAULT_LEASE_PERIOD
        if "lease_period" in table:
            period = self._value("lease_period", table["lease_period"], _lease_period, *at)
        batch = self._value("batch", table.get("batch", DEFAULT_BATCH), _batch, *at)
        envelope = self._value("envelope", table.get("envelope", False), _flag, *at)
        if len(self.errors) != before or stream is None or region is None or lease_table is None:
            return None
        return KinesisSource(
            stream=stream,
            region=region,
            lease_table=lease_table,
            line=line,
            aws_profile=texts.get("aws_profile"),
            access_key=access_key,
            secret_key=secret_key,
            iam_role_arn=role,
            iam_role_duration=duration,
            sts_endpoint=endpoints.get("sts_endpoint"),
            kinesis_endpoint=endpoints.get("kinesis_endpoint"),
            dynamodb_endpoint=endpoints.get("dynamodb_endpoint"),
            lease_period=float(period),
            worker_id=texts.get("worker_id"),
            batch=int(batch),
            envelope=bool(envelope),
        )


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _stream(value: object) -> str:
    text = str(value)
    if text.startswith("arn:"):
        if _STREAM_ARN.fullmatch(text) is None:
            raise ValueError(
                f"invalid stream ARN {text!r}: expected arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"
            )
    elif _STREAM_NAME.fullmatch(text) is None:
        raise ValueError(f"invalid stream name {text!r}: 1 to 128 letters, digits, '_', '.' or '-'")
    return text


def _region(value: object) -> str:
    text = str(value)
    if _REGION.fullmatch(text) is None:
        raise ValueError(f"invalid region {text!r}: expected a region such as us-east-1")
    return text


def _table_name(value: object) -> str:
    text = str(value)
    if _TABLE_NAME.fullmatch(text) is None:
        raise ValueError(f"invalid lease_table {text!r}: 3 to 255 letters, digits, '_', '.' or '-'")
    return text


def _role_arn(value: object) -> str:
    return values.parse_role_arn(str(value))


def _role_duration(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a number of seconds, 900 to 3600, got {value!r}")
    return values.parse_role_duration(str(value))


def _endpoint(name: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        return values.parse_endpoint(name, str(value))

    return parse


def _lease_period(value: object) -> float:
    seconds = _duration(value)
    if seconds < MIN_LEASE_PERIOD:
        raise ValueError(f"must be at least {MIN_LEASE_PERIOD:g}s, got {value!r}")
    return seconds


def _batch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DEFAULT_BATCH:
        raise ValueError(f"expected a number of records from 1 to {DEFAULT_BATCH}, got {value!r}")
    return value


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
    for source in settings.kinesis:
        lines.append(f"  [[kinesis]] at line {source.line}: {describe_source(source)}")
    return "\n".join(lines)


def describe_source(source: KinesisSource) -> str:
    """A ``[[kinesis]]`` source in words (never a secret), for ``check-config``."""
    parts = [f"stream {source.stream} in {source.region}", f"lease table {source.lease_table}"]
    parts.append(f"lease period {show_duration(source.lease_period)}")
    parts.append(f"worker id {source.worker_id or 'HOST:PID:RANDOM'}")
    parts.append(f"batch {source.batch} records")
    parts.append("envelope (JSON with the source)" if source.envelope else "raw messages")
    if source.access_key:
        parts.append(f"access key {source.access_key}")
    elif source.aws_profile:
        parts.append(f"profile {source.aws_profile}")
    else:
        parts.append("default credentials chain")
    if source.iam_role_arn:
        duration = source.iam_role_duration or 3600
        parts.append(f"role {source.iam_role_arn} ({duration} s)")
    for name in ("sts_endpoint", "kinesis_endpoint", "dynamodb_endpoint"):
        value = getattr(source, name)
        if value:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


def _describe_options(options: GroupOptions) -> str:
    parts = ["envelope (JSON with the source)" if options.envelope else "raw messages"]
    if options.include_streams:
        parts.append("only streams starting with " + " or ".join(options.include_streams))
    if options.exclude_streams:
        parts.append("not streams starting with " + " or ".join(options.exclude_streams))
    if not options.filters_streams:
        parts.append("every stream")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------
# [[group]] rules against the groups ossec.conf names.


def _could_fit(rule: GroupRule, entry: Entry, regions: tuple[str, ...]) -> bool:
    """Whether ``rule`` may apply to a group that ``entry`` (read in ``regions``; none:
    every region) selects; True whenever it cannot be ruled out from the files alone (the
    credentials' own account is known only to STS)."""
    pattern = rule.match
    if pattern.startswith("arn:"):
        found = _RULE_ARN.fullmatch(pattern)
        if found is None:
            return False
        account, region, pattern = found.group(1), found.group(2), found.group(3)
        if isinstance(entry, GroupArn):
            if (entry.account, entry.region) != (account, region):
                return False
        elif regions and region not in regions:
            return False
    name = entry.name if isinstance(entry, (GroupName, GroupArn)) else None
    if pattern.endswith("*"):
        start = pattern[:-1]
        if name is not None:
            return name.startswith(start)
        assert isinstance(entry, GroupPrefix)
        return entry.prefix.startswith(start) or start.startswith(entry.prefix)
    if name is not None:
        return name == pattern
    assert isinstance(entry, GroupPrefix)
    return pattern.startswith(entry.prefix)


_RULE_ARN = re.compile(r"arn:aws[a-z-]*:logs:([a-z0-9-]+):([0-9]{12}):log-group:([^:]+?)(?::\*)?")


def unmatched_rules(settings: SettingsFile, config: Config) -> list[ConfigProblem]:
    """A warning per ``[[group]]`` whose ``match`` fits no group that ossec.conf's
    services name: a typo there silently leaves a group with the defaults."""
    selected: list[tuple[Entry, tuple[str, ...]]] = []
    for wodle in config.wodles:
        for service in wodle.services:
            for text in service.log_groups:
                try:
                    selected.append((parse_entry(text), service.regions))
                except ValueError:
                    continue
    return [
        ConfigProblem(
            settings.path,
            rule.line,
            f"[[group]] match '{rule.match}' fits no log group of {config.path}'s "
            "services (aws_log_groups): its options are never used; check its spelling",
        )
        for rule in settings.groups.rules
        if not any(_could_fit(rule, entry, regions) for entry, regions in selected)
    ]
