"""What an entry of ``aws_log_groups`` names, and the options that apply to one log group.

An entry is one of three things:

- a log group name (``app``), read in each region of the service;
- a prefix (``/aws/lambda/*``): every group whose name starts with the text before the
  ``*``, listed in each region with DescribeLogGroups;
- another account's group by ARN (``arn:aws:logs:REGION:ACCOUNT:log-group:NAME``, with or
  without the trailing ``:*`` of AWS's resource ARNs), read through ``logGroupIdentifier``
  in the ARN's region, as a CloudWatch cross-account observability monitoring account does.

Per-group options come from the settings file: the first ``[[group]]`` whose ``match``
fits a group gives its options. Pure data and text; no AWS, no disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# AWS's log group names: letters, digits and ``._-/#``, up to 512 characters.
_NAME = re.compile(r"[A-Za-z0-9._\-/#]{1,512}")
_NAME_RULE = "log group names hold letters, digits and . _ - / # only"
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):logs:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12})"
    r":log-group:(?P<name>[^:]+?)(?P<all>:\*)?"
)


@dataclass(frozen=True)
class GroupName:
    """One log group, by name, in each region of the service."""

    name: str

    @property
    def text(self) -> str:
        return self.name


@dataclass(frozen=True)
class GroupPrefix:
    """Every log group whose name starts with ``prefix`` (empty: every group)."""

    prefix: str

    @property
    def text(self) -> str:
        return self.prefix + "*"


@dataclass(frozen=True)
class GroupArn:
    """A log group of any account, by ARN; ``arn`` is without the trailing ``:*`` (AWS's
    ``logGroupIdentifier`` refuses a ``*``)."""

    arn: str
    partition: str
    region: str
    account: str
    name: str

    @property
    def text(self) -> str:
        return self.arn


Entry = GroupName | GroupPrefix | GroupArn


def parse_entry(text: str) -> Entry:
    """What one entry of ``aws_log_groups`` names; a ValueError says what is wrong with it."""
    if text.startswith("arn:"):
        found = _ARN.fullmatch(text)
        if found is None:
            raise ValueError(
                f"invalid log group ARN '{text}': expected "
                "arn:PARTITION:logs:REGION:ACCOUNT_ID:log-group:NAME"
            )
        name = found.group("name")
        if "*" in name:
            raise ValueError(
                f"invalid log group ARN '{text}': a prefix (*) is for groups of the "
                "credentials' own account; name another account's groups one by one"
            )
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"invalid log group name '{name}' in ARN '{text}'")
        arn = text.removesuffix(":*")
        return GroupArn(
            arn, found.group("partition"), found.group("region"), found.group("account"), name
        )
    if "*" in text[:-1]:
        raise ValueError(
            f"invalid log group '{text}': a * may only end an entry, to select every group "
            "with that prefix"
        )
    if text.endswith("*"):
        prefix = text[:-1]
        if prefix and _NAME.fullmatch(prefix) is None:
            raise ValueError(f"invalid log group prefix '{text}': {_NAME_RULE}")
        return GroupPrefix(prefix)
    return GroupName(text)


@dataclass(frozen=True)
class GroupOptions:
    """How one group is read and sent.

    ``include_streams``: stream name prefixes; when any is given, only streams starting with
    one of them are sent. ``exclude_streams``: streams starting with one of these are not
    sent (checked after ``include_streams``). Events of streams left out are neither sent
    nor counted, and their streams are never deleted. ``envelope``: each event goes to the
    manager as a JSON object holding the message and its source (see ``envelope``)."""

    include_streams: tuple[str, ...] = ()
    exclude_streams: tuple[str, ...] = ()
    envelope: bool = False

    @property
    def filters_streams(self) -> bool:
        return bool(self.include_streams or self.exclude_streams)

    def keeps(self, stream: str) -> bool:
        """Whether events of ``stream`` are sent."""
        if self.include_streams and not stream.startswith(self.include_streams):
            return False
        return not (self.exclude_streams and stream.startswith(self.exclude_streams))

    @property
    def server_prefix(self) -> str | None:
        """The one stream prefix that FilterLogEvents can apply itself (it takes one), when
        there is exactly one to include; the engine filters every page all the same."""
        if len(self.include_streams) == 1:
            return self.include_streams[0]
        return None


DEFAULT_OPTIONS = GroupOptions()


@dataclass(frozen=True)
class GroupRule:
    """One ``[[group]]`` of the settings file: which groups it applies to, and how.

    ``match``: a group name, a name prefix ending in ``*``, or an ARN (of one group, or
    ending in ``*`` for a prefix in that account and region); ``line``: where it is."""

    match: str
    options: GroupOptions
    line: int = 0

    def fits(self, account: str, region: str, group: str) -> bool:
        """Whether this rule applies to the group ``group`` of ``account`` in ``region``."""
        pattern = self.match
        if pattern.startswith("arn:"):
            found = _ARN.fullmatch(pattern)
            if found is None:
                return False
            if found.group("account") != account or found.group("region") != region:
                return False
            pattern = found.group("name")
        if pattern.endswith("*"):
            return group.startswith(pattern[:-1])
        return group == pattern


def check_match(text: str) -> None:
    """Refuse a ``match`` that can fit no group (a ValueError says why)."""
    if not text:
        raise ValueError("match is empty: give a log group name, a prefix ending in *, or an ARN")
    if text.startswith("arn:"):
        found = _ARN.fullmatch(text)
        if found is None:
            raise ValueError(
                f"invalid match '{text}': an ARN is "
                "arn:PARTITION:logs:REGION:ACCOUNT_ID:log-group:NAME (NAME may end in *)"
            )
        name = found.group("name")
    else:
        name = text
    if "*" in name[:-1]:
        raise ValueError(f"invalid match '{text}': a * may only end it")


@dataclass(frozen=True)
class GroupRules:
    """Every ``[[group]]`` of the settings file, in file order: the first that fits a group
    gives its options; a group that none fits gets the defaults (raw messages, every
    stream)."""

    rules: tuple[GroupRule, ...] = ()

    def for_group(self, account: str, region: str, group: str) -> GroupOptions:
        for rule in self.rules:
            if rule.fits(account, region, group):
                return rule.options
        return DEFAULT_OPTIONS
