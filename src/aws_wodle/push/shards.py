"""The shards of a stream (ListShards), a lease for each new one, and parent-first order.

A split or a merge closes its parent shards and opens children. Records of one partition
key go to the parent before the split and to a child after it, so a child is read only once
every parent's lease says SHARD_END, or once the parent has aged out of the stream (it is
no longer listed, its records past retention).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..aws.kinesis import guard
from .leases import Lease, LeaseTable


@dataclass(frozen=True)
class Shard:
    """A shard as ListShards shows it; ``closed``: split or merged, no more writes."""

    id: str
    parents: tuple[str, ...] = ()
    closed: bool = False


def stream_arg(stream: str) -> dict[str, str]:
    """How Kinesis calls name a stream: by ARN or by name."""
    return {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}


def check_stream(client: Any, stream: str) -> None:
    """One ListShards of one shard: raises ``aws.NotFound`` when the stream is missing."""
    guard("kinesis:ListShards", partial(client.list_shards, MaxResults=1, **stream_arg(stream)))


def list_shards(client: Any, stream: str) -> list[Shard]:
    """Every shard of the stream, open and closed (ListShards, paged)."""
    shards: list[Shard] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else stream_arg(stream)
        page = guard("kinesis:ListShards", partial(client.list_shards, **kwargs))
        for item in page.get("Shards", []):
            parents = tuple(
                str(item[key])
                for key in ("ParentShardId", "AdjacentParentShardId")
                if item.get(key)
            )
            closed = "EndingSequenceNumber" in item.get("SequenceNumberRange", {})
            shards.append(Shard(str(item["ShardId"]), parents, closed))
        token = page.get("NextToken") or None
        if not token:
            return shards


def add_new(table: LeaseTable, shards: Iterable[Shard], known: Collection[str]) -> list[str]:
    """Create a free lease, read from the start, for each shard without one; the shards
    whose lease this call created (another worker may create some at the same time)."""
    created = []
    for shard in shards:
        if shard.id not in known and table.create(shard.id, shard.parents):
            created.append(shard.id)
    return created


def ready(lease: Lease, leases: Mapping[str, Lease], listed: Collection[str]) -> bool:
    """Whether a shard may be read: every parent was read to its end, or is gone."""
    for parent in lease.parents:
        parent_lease = leases.get(parent)
        if parent_lease is not None and parent_lease.finished:
            continue
        if parent_lease is None and parent not in listed:
            continue  # aged out of the stream: nothing of it is left to read first
        return False
    return True


def gone(leases: Iterable[Lease], listed: Collection[str]) -> list[Lease]:
    """Finished leases of shards no longer in the stream, whose lease can be deleted."""
    return [lease for lease in leases if lease.finished and lease.key not in listed]
