"""``check-config --probe``: ask AWS once, with the configured credentials, whether each
``[[kinesis]]`` source and each log group can be read, and name a permission missing.

Each check is the cheapest call of the permission the collector needs: ListShards,
GetShardIterator and GetRecords (one record) on the stream, DescribeTable and a one-item
Scan on the lease table; DescribeLogGroups and FilterLogEvents (one event) on a group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.config import Config as BotoConfig

from ..aws.cloudwatch import AwsAccess
from ..aws.kinesis import NotFound, guard
from ..config import Config
from ..errors import AccessDenied, AwsError
from ..model import CloudWatchService
from ..push.shards import stream_arg
from ..push.source import KinesisSource

_QUICK = BotoConfig(
    retries={"total_max_attempts": 2, "mode": "standard"},
    connect_timeout=5,
    read_timeout=10,
    user_agent_extra="aws-wodle",
)


@dataclass(frozen=True)
class Finding:
    """One thing probed: ``ok``, and what was found (the permissions asked, or why not)."""

    ok: bool
    what: str
    detail: str

    def line(self) -> str:
        return f"probe: {'OK' if self.ok else 'FAILED'}: {self.what}: {self.detail}"


def _why(exc: Exception) -> str:
    if isinstance(exc, AccessDenied):
        return f"permission {exc.operation} is missing ({exc})"
    return str(exc)


def probe_source(
    source: KinesisSource, clients: Callable[[KinesisSource], tuple[Any, Any]]
) -> Finding:
    """The stream and the lease table of one ``[[kinesis]]`` source."""
    what = f"[[kinesis]] at line {source.line}: stream {source.stream} in {source.region}"
    asked: list[str] = []

    def call(operation: str, make: Callable[[], Any]) -> Any:
        asked.append(operation)
        return guard(operation, make)

    try:
        kinesis, dynamodb = clients(source)
        shards = call(
            "kinesis:ListShards",
            lambda: kinesis.list_shards(MaxResults=1, **stream_arg(source.stream)),
        ).get("Shards", [])
        if shards:
            shard = str(shards[0]["ShardId"])
            iterator = call(
                "kinesis:GetShardIterator",
                lambda: kinesis.get_shard_iterator(
                    ShardId=shard, ShardIteratorType="LATEST", **stream_arg(source.stream)
                ),
            )["ShardIterator"]
            call("kinesis:GetRecords", lambda: kinesis.get_records(ShardIterator=iterator, Limit=1))
    except NotFound:
        return Finding(
            False, what, "the stream does not exist (or these credentials cannot see it)"
        )
    except AwsError as exc:
        return Finding(False, what, _why(exc))
    table = f"lease table {source.lease_table}"
    try:
        call(
            "dynamodb:DescribeTable", lambda: dynamodb.describe_table(TableName=source.lease_table)
        )
    except NotFound:
        return Finding(
            True,
            what,
            f"{', '.join(asked[:-1])} allowed; {table} does not exist yet: the first worker "
            "creates it, which needs dynamodb:CreateTable",
        )
    except AwsError as exc:
        return Finding(False, what, _why(exc))
    try:
        call("dynamodb:Scan", lambda: dynamodb.scan(TableName=source.lease_table, Limit=1))
    except AwsError as exc:
        return Finding(False, what, _why(exc))
    return Finding(True, what, f"{', '.join(asked)} allowed ({table})")


def _logs_client(service: CloudWatchService, region: str) -> Any:
    session = AwsAccess(service).session()
    return session.create_client(
        "logs", region_name=region, endpoint_url=service.service_endpoint, config=_QUICK
    )


def probe_group(client: Any, group: str) -> tuple[bool, str]:
    """Whether a log group (a name, a prefix ending in ``*``, or an ARN) can be listed and
    read; what was asked, or why not."""
    asked: list[str] = []
    try:
        if group.endswith("*"):
            asked.append("logs:DescribeLogGroups")
            guard(
                "logs:DescribeLogGroups",
                lambda: client.describe_log_groups(logGroupNamePrefix=group[:-1], limit=1),
            )
            return True, "logs:DescribeLogGroups allowed"
        name = (
            group.split(":log-group:", 1)[1].split(":", 1)[0] if group.startswith("arn:") else group
        )
        asked.append("logs:DescribeLogGroups")
        found = guard(
            "logs:DescribeLogGroups",
            lambda: client.describe_log_groups(logGroupNamePrefix=name, limit=1),
        ).get("logGroups", [])
        if not any(g.get("logGroupName") == name for g in found):
            return False, "the log group does not exist (or these credentials cannot see it)"
        asked.append("logs:FilterLogEvents")
        guard("logs:FilterLogEvents", lambda: client.filter_log_events(logGroupName=name, limit=1))
    except NotFound:
        return False, "the log group does not exist (or these credentials cannot see it)"
    except AwsError as exc:
        return False, _why(exc)
    return True, f"{', '.join(asked)} allowed"


def probe_all(
    config: Config,
    sources: tuple[KinesisSource, ...],
    clients: Callable[[KinesisSource], tuple[Any, Any]],
    logs_client: Callable[[CloudWatchService, str], Any] = _logs_client,
) -> Iterator[Finding]:
    """Every enabled service's groups in each region, then every ``[[kinesis]]`` source."""
    for wodle in config.wodles:
        if wodle.disabled:
            continue
        for service in wodle.services:
            for region in service.regions:
                try:
                    client = logs_client(service, region)
                except AwsError as exc:
                    yield Finding(False, f"service at line {service.line} in {region}", _why(exc))
                    continue
                for group in service.log_groups:
                    ok, detail = probe_group(client, group)
                    yield Finding(
                        ok, f"log group {group} in {region} (line {service.line})", detail
                    )
    for source in sources:
        yield probe_source(source, clients)
