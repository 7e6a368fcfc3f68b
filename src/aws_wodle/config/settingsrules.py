"""aws-wodle.toml's rules: each key and table of a parsed document checked and converted,
into a ``SettingsFile``, with every problem's file and line.

The top-level keys (durations, metrics, log options), ``[rates]`` and ``[[group]]`` are
checked here, ``[[kinesis]]`` in ``settingskinesis``; single values in ``settingsvalues``.
An error refuses the file (all are reported at once, in line order), a warning does not.
``unmatched_rules`` holds the ``[[group]]`` rules against the groups ossec.conf names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..aws.budget import DEFAULT_RATES
from ..errors import ConfigError, ConfigProblem
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
from .model import Config
from .settingskinesis import kinesis_sources
from .settingsmodel import DURATIONS, SettingsFile
from .settingsvalues import Problems, as_duration, as_flag
from .tomllines import Path
from .values import FORMATS, parse_address

LOG_LEVELS = ("debug", "info", "warning", "error")
TOP_KEYS = (*DURATIONS, "metrics", "log_level", "log_format", "rates", "group", "kinesis")
GROUP_KEYS = ("match", "include_streams", "exclude_streams", "envelope")


def build_settings(document: dict[str, Any], path: str, lines: dict[Path, int]) -> SettingsFile:
    """The settings of a parsed file (``lines``: the line of each key, from ``tomlreader``);
    raises ConfigError with every error found, in line order."""
    return _Reader(path, lines).read(document)


class _Reader(Problems):
    """Checks a parsed document key by key, collecting every problem with its line."""

    def read(self, document: dict[str, Any]) -> SettingsFile:
        values: dict[str, Any] = {}
        for key, value in document.items():
            if key not in TOP_KEYS:
                self.error(f"unknown setting '{key}' (known: {', '.join(TOP_KEYS)})", key)
            elif key in DURATIONS:
                values[key] = self.value(key, value, as_duration)
            elif key == "metrics":
                values[key] = self.value(key, value, _metrics)
            elif key == "log_level":
                values[key] = self.value(key, value, _choice(key, LOG_LEVELS))
            elif key == "log_format":
                values[key] = self.value(key, value, _choice(key, FORMATS))
        rates = self._rates(document.get("rates", {}))
        groups = self._groups(document.get("group", []))
        kinesis = kinesis_sources(self, document.get("kinesis", []))
        if self.errors:
            raise ConfigError(sorted(self.errors, key=lambda p: p.line))
        lines = {key: self.line(key) for key in document}
        lines.update({f"rates.{name}": self.line("rates", name) for name in rates})
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
            rate = self.value(name, value, _rate, "rates")
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
        line = self.line("group", index)
        if not isinstance(table, dict):
            self.error("group must be written [[group]], one per group or prefix", "group")
            return None
        before = len(self.errors)
        for key in table:
            if key not in GROUP_KEYS:
                self.error(
                    f"unknown option '{key}' in [[group]] (known: {', '.join(GROUP_KEYS)})",
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
            self.value("match", match, _match, *at)
        include = self.value("include_streams", table.get("include_streams", []), _prefixes, *at)
        exclude = self.value("exclude_streams", table.get("exclude_streams", []), _prefixes, *at)
        envelope = self.value("envelope", table.get("envelope", False), as_flag, *at)
        if len(self.errors) != before:
            return None
        options = GroupOptions(tuple(include), tuple(exclude), bool(envelope))
        return GroupRule(str(match), options, line)


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
