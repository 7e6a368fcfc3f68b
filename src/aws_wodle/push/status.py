"""``status`` for the ``[[kinesis]]`` sources: each one's shards, owners and lag, read from
its lease table with the source's own credentials, quickly, or a line saying why not."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.config import Config as BotoConfig

from ..aws.cloudwatch import AwsAccess
from ..aws.kinesis import NotFound, guard
from ..errors import AwsError
from .leases import LeaseTable
from .source import KinesisSource

# status answers in seconds: one attempt per call, short timeouts.
CONNECT_SECONDS = 3
READ_SECONDS = 5


def quick_table(source: KinesisSource) -> Any:
    """A DynamoDB client for the source's lease table: one attempt, short timeouts."""
    session = AwsAccess(source.credentials()).session()
    return session.create_client(
        "dynamodb",
        region_name=source.region,
        endpoint_url=source.dynamodb_endpoint,
        config=BotoConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=CONNECT_SECONDS,
            read_timeout=READ_SECONDS,
            user_agent_extra="aws-wodle",
        ),
    )


def source_status(
    source: KinesisSource,
    now: float,
    client: Callable[[KinesisSource], Any] = quick_table,
) -> dict[str, object]:
    """One source: its lease table's shards (owner, checkpoint, lag), or ``error``."""
    doc: dict[str, object] = {
        "stream": source.stream_name,
        "region": source.region,
        "lease_table": source.lease_table,
        "shards": [],
        "error": None,
    }
    try:
        dynamodb = client(source)
        guard(
            "dynamodb:DescribeTable", lambda: dynamodb.describe_table(TableName=source.lease_table)
        )
        leases = LeaseTable(dynamodb, source.lease_table).leases()
    except NotFound:
        doc["error"] = "no lease table yet (no worker has read this stream)"
        return doc
    except AwsError as exc:
        doc["error"] = f"AWS cannot be reached or refused: {exc}"
        return doc
    except Exception as exc:  # noqa: BLE001 - credentials not built, an endpoint mistyped
        doc["error"] = f"AWS cannot be reached: {exc}"
        return doc
    doc["shards"] = [
        {
            "shard": lease.key,
            "owner": lease.owner,
            "checkpoint": lease.checkpoint,
            "behind_seconds": None if lease.behind_ms is None else lease.behind_ms / 1000,
            "checkpoint_age_seconds": (
                None
                if lease.checkpoint_at is None
                else max(0.0, round(now - lease.checkpoint_at / 1000, 3))
            ),
            "owner_switches": lease.owner_switches,
            "parents": list(lease.parents),
        }
        for lease in leases
    ]
    return doc


def all_status(
    sources: Sequence[KinesisSource], client: Callable[[KinesisSource], Any] = quick_table
) -> list[dict[str, object]]:
    now = time.time()
    return [source_status(source, now, client) for source in sources]
