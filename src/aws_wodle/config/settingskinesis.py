"""A ``[[kinesis]]`` table of aws-wodle.toml, checked key by key, into a ``KinesisSource``.

One table per stream fed by subscription filters (the push source, ``push/``): its stream
(a name, or the ARN that also gives the region), the lease table, the credentials and
endpoints, the lease period and batch. Each problem is collected in ``Problems`` with its
line, as ``settingsrules`` does for the rest of the file, which calls ``kinesis_sources``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import ConfigProblem
from ..push.source import (
    DEFAULT_BATCH,
    DEFAULT_LEASE_PERIOD,
    LEASE_TABLE_PREFIX,
    KinesisSource,
    arn_region,
    stream_name,
)
from . import values
from .settingsvalues import Problems, as_duration, as_flag

KINESIS_KEYS = (
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


def kinesis_sources(problems: Problems, tables: object) -> tuple[KinesisSource, ...]:
    """The sources of the ``[[kinesis]]`` tables (the document's ``kinesis``), each stream
    and region once; a table with a problem gives none."""
    if not isinstance(tables, list):
        problems.error("kinesis must be written [[kinesis]], one per stream", "kinesis")
        return ()
    sources: list[KinesisSource] = []
    seen: dict[tuple[str, str], int] = {}
    for index, table in enumerate(tables):
        source = _one_source(problems, index, table)
        if source is None:
            continue
        where = (source.stream_name, source.region)
        if where in seen:
            problems.error(
                f"[[kinesis]] stream {source.stream_name} in {source.region} is also at line "
                f"{seen[where]}: one worker per stream and process is enough",
                "kinesis",
                index,
            )
            continue
        seen[where] = source.line
        sources.append(source)
    return tuple(sources)


def _one_source(problems: Problems, index: int, table: object) -> KinesisSource | None:
    line = problems.line("kinesis", index)
    if not isinstance(table, dict):
        problems.error("kinesis must be written [[kinesis]], one per stream", "kinesis")
        return None
    before = len(problems.errors)
    at = ("kinesis", index)
    for key in table:
        if key not in KINESIS_KEYS:
            known = ", ".join(KINESIS_KEYS)
            problems.error(f"unknown option '{key}' in [[kinesis]] (known: {known})", *at, key)
    texts: dict[str, str] = {}
    for key in KINESIS_KEYS:
        if key in table and key not in (
            "iam_role_duration",
            "lease_period",
            "batch",
            "envelope",
        ):
            text = problems.value(key, table[key], _text, *at)
            if text is not None:
                texts[key] = text
    stream = texts.get("stream")
    region: str | None = None
    if "stream" not in table:
        problems.error("[[kinesis]] needs a stream: its name or ARN", *at)
    elif stream is not None:
        problems.value("stream", stream, _stream, *at)
        region = arn_region(stream)
    if "region" in texts:
        given = problems.value("region", texts["region"], _region, *at)
        if given is not None and region is not None and given != region:
            problems.error(
                f"[[kinesis]] region: {given} differs from the stream ARN's {region}",
                *at,
                "region",
            )
        region = region or given
    elif stream is not None and region is None:
        problems.error("[[kinesis]] needs a region (or the stream's ARN)", *at)
    lease_table = None
    if "lease_table" in texts:
        lease_table = problems.value("lease_table", texts["lease_table"], _table_name, *at)
    elif stream is not None:
        lease_table = (LEASE_TABLE_PREFIX + stream_name(stream))[:255]
    access_key, secret_key = texts.get("access_key"), texts.get("secret_key")
    if bool(access_key) != bool(secret_key):
        needs = "access_key needs secret_key" if access_key else "secret_key needs access_key"
        problems.error(f"[[kinesis]] {needs}", *at, "access_key" if access_key else "secret_key")
    elif access_key:
        problems.warnings.append(
            ConfigProblem(
                problems.path,
                problems.line(*at, "access_key"),
                "[[kinesis]] access_key/secret_key are deprecated; use aws_profile or iam_role_arn",
            )
        )
    role = None
    if "iam_role_arn" in texts:
        role = problems.value("iam_role_arn", texts["iam_role_arn"], _role_arn, *at)
    duration = None
    if "iam_role_duration" in table:
        duration = problems.value(
            "iam_role_duration", table["iam_role_duration"], _role_duration, *at
        )
        if "iam_role_arn" not in table:
            problems.error(
                "[[kinesis]] iam_role_duration needs iam_role_arn", *at, "iam_role_duration"
            )
    endpoints = {
        name: problems.value(name, texts[name], _endpoint(name), *at)
        for name in ("sts_endpoint", "kinesis_endpoint", "dynamodb_endpoint")
        if name in texts
    }
    period = DEFAULT_LEASE_PERIOD
    if "lease_period" in table:
        period = problems.value("lease_period", table["lease_period"], _lease_period, *at)
    batch = problems.value("batch", table.get("batch", DEFAULT_BATCH), _batch, *at)
    envelope = problems.value("envelope", table.get("envelope", False), as_flag, *at)
    if len(problems.errors) != before or stream is None or region is None or lease_table is None:
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
    seconds = as_duration(value)
    if seconds < MIN_LEASE_PERIOD:
        raise ValueError(f"must be at least {MIN_LEASE_PERIOD:g}s, got {value!r}")
    return seconds


def _batch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DEFAULT_BATCH:
        raise ValueError(f"expected a number of records from 1 to {DEFAULT_BATCH}, got {value!r}")
    return value
