"""The lease table: one DynamoDB item per shard, every write conditional.

An item, keyed by ``leaseKey`` (the shard id)::

    leaseKey        shardId-000000000001
    leaseOwner      the worker holding it (absent: free)
    leaseCounter    raised by every take and renewal: a counter that stops moving means
                    its owner is gone
    checkpoint      the sequence number of the last record forwarded, TRIM_HORIZON (none
                    yet) or SHARD_END (a closed shard read to its end)
    parentShardIds  the shards it was split or merged from
    ownerSwitches   how many times it changed hands
    wantedBy        a worker that asked for the lease, to balance the load (absent: none)
    checkpointAt    when the checkpoint was last stored (ms since the epoch; for ``status``)
    behindMs        how far behind the stream's tip the shard was then (GetRecords'
                    MillisBehindLatest; for ``status``)

A worker that holds a lease knows its counter. Renewal, checkpoint, release and hand-over
succeed only while the owner is this worker and the counter is the one it knows; a take
only while the counter (and owner) are those observed. A write that fails its condition
raises ``LeaseLost``: someone else has the lease, and the shard must not be read further.

A live worker's lease is not taken from it: another worker asks for it (``request``), and
the owner hands it over (``hand_over``) between two batches, once the last one is
checkpointed, so that a lease moved to balance the load repeats nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..aws.kinesis import ConditionFailed, InUse, NotFound, guard
from ..errors import AwsError

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
# A new table takes seconds to become ACTIVE on AWS; give up after this long.
TABLE_WAIT_SECONDS = 300.0


class LeaseLost(AwsError):
    """A conditional write on a lease failed: another worker has it (or it is gone)."""


@dataclass(frozen=True)
class Lease:
    """One lease item as read (or as this worker last wrote it)."""

    key: str
    owner: str | None
    counter: int
    checkpoint: str = TRIM_HORIZON
    parents: tuple[str, ...] = ()
    owner_switches: int = 0
    wanted_by: str | None = None
    checkpoint_at: int | None = None
    behind_ms: int | None = None

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END


def _lease(item: dict[str, Any]) -> Lease:
    owner = item.get("leaseOwner", {}).get("S")
    parents = tuple(item.get("parentShardIds", {}).get("SS", ()))
    return Lease(
        key=str(item["leaseKey"]["S"]),
        owner=str(owner) if owner else None,
        counter=int(item.get("leaseCounter", {}).get("N", "0")),
        checkpoint=str(item.get("checkpoint", {}).get("S", TRIM_HORIZON)),
        parents=tuple(sorted(str(p) for p in parents)),
        owner_switches=int(item.get("ownerSwitches", {}).get("N", "0")),
        wanted_by=item.get("wantedBy", {}).get("S") or None,
        checkpoint_at=_optional_int(item.get("checkpointAt")),
        behind_ms=_optional_int(item.get("behindMs")),
    )


def _optional_int(value: dict[str, Any] | None) -> int | None:
    if not value or "N" not in value:
        return None
    return int(value["N"])


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class LeaseTable:
    """The lease table of one stream, through a DynamoDB client."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.name = name
        self._sleep = sleep

    # -- the table --------------------------------------------------------------------

    def ensure(self) -> bool:
        """Create the table (on-demand billing) when it is missing, and wait until it is
        ACTIVE. Returns whether this call created it."""
        created = False
        try:
            status = self._status()
        except NotFound:
            status = ""
        if not status:
            try:
                guard(
                    "dynamodb:CreateTable",
                    lambda: self._client.create_table(
                        TableName=self.name,
                        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST",
                    ),
                )
                created = True
            except InUse:
                pass  # another worker created it at the same moment
        deadline = time.monotonic() + TABLE_WAIT_SECONDS
        delay = 0.2
        while True:
            try:
                status = self._status()
            except NotFound:
                status = ""
            if status == "ACTIVE":
                return created
            if time.monotonic() > deadline:
                raise AwsError(
                    f"lease table {self.name} not ACTIVE after {TABLE_WAIT_SECONDS:g} s "
                    f"({status or 'missing'})",
                    "TableNotActive",
                    "dynamodb:DescribeTable",
                )
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    def _status(self) -> str:
        answer = guard(
            "dynamodb:DescribeTable", lambda: self._client.describe_table(TableName=self.name)
        )
        return str(answer.get("Table", {}).get("TableStatus", ""))

    # -- reads ------------------------------------------------------------------------

    def leases(self) -> list[Lease]:
        """Every lease (a consistent Scan, paged), sorted by shard."""
        return sorted(self._scan(), key=lambda lease: lease.key)

    def _scan(self) -> Iterator[Lease]:
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = guard("dynamodb:Scan", partial(self._client.scan, **kwargs))
            for item in page.get("Items", []):
                yield _lease(item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def get(self, key: str) -> Lease | None:
        answer = guard(
            "dynamodb:GetItem",
            lambda: self._client.get_item(
                TableName=self.name, Key={"leaseKey": {"S": key}}, ConsistentRead=True
            ),
        )
        item = answer.get("Item")
        return _lease(item) if item else None

    # -- conditional writes -----------------------------------------------------------

    def create(self, key: str, parents: Sequence[str] = ()) -> bool:
        """A free lease for a new shard, read from its start; False when it exists."""
        item: dict[str, Any] = {
            "leaseKey": {"S": key},
            "leaseCounter": _n(0),
            "checkpoint": {"S": TRIM_HORIZON},
            "ownerSwitches": _n(0),
        }
        if parents:
            item["parentShardIds"] = {"SS": sorted(parents)}
        try:
            guard(
                "dynamodb:PutItem",
                lambda: self._client.put_item(
                    TableName=self.name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(leaseKey)",
                ),
            )
        except ConditionFailed:
            return False
        return True

    def _update(
        self,
        lease: Lease,
        operation: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> Lease:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": {"leaseKey": {"S": lease.key}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            answer = guard(
                f"dynamodb:UpdateItem ({operation})", partial(self._client.update_item, **kwargs)
            )
        except ConditionFailed as exc:
            raise LeaseLost(
                f"lease {lease.key}: {operation} refused, another worker holds it",
                exc.code,
                exc.operation,
            ) from None
        return _lease(answer["Attributes"])

    def take(self, lease: Lease, me: str) -> Lease:
        """Take a lease as observed (free, expired, or to steal): only if its counter and
        owner are still those of ``lease``. A request for it is dropped."""
        values: dict[str, Any] = {
            ":me": {"S": me},
            ":one": _n(1),
            ":zero": _n(0),
            ":seen": _n(lease.counter),
        }
        if lease.owner is None:
            owner_is = "attribute_not_exists(leaseOwner)"
        else:
            owner_is = "leaseOwner = :was"
            values[":was"] = {"S": lease.owner}
        return self._update(
            lease,
            "take",
            update="SET leaseOwner = :me, leaseCounter = leaseCounter + :one, "
            "ownerSwitches = if_not_exists(ownerSwitches, :zero) + :one REMOVE wantedBy",
            condition=f"leaseCounter = :seen AND {owner_is}",
            values=values,
        )

    @staticmethod
    def _mine(lease: Lease, me: str) -> dict[str, Any]:
        return {":me": {"S": me}, ":held": _n(lease.counter)}

    _HELD = "leaseOwner = :me AND leaseCounter = :held"

    def renew(self, lease: Lease, me: str) -> Lease:
        """Raise the counter of a lease held: others see that its owner is alive."""
        return self._update(
            lease,
            "renew",
            update="SET leaseCounter = leaseCounter + :one",
            condition=self._HELD,
            values={**self._mine(lease, me), ":one": _n(1)},
        )

    def checkpoint(
        self, lease: Lease, me: str, position: str, behind_ms: int | None = None
    ) -> Lease:
        """Store how far the shard was forwarded (a sequence number, or SHARD_END), when,
        and how far behind the stream's tip the reader was (``status`` shows both)."""
        values = {
            **self._mine(lease, me),
            ":at": {"S": position},
            ":when": _n(int(time.time() * 1000)),
        }
        update = "SET #cp = :at, checkpointAt = :when"
        if behind_ms is not None:
            update += ", behindMs = :behind"
            values[":behind"] = _n(int(behind_ms))
        return self._update(
            lease,
            "checkpoint",
            update=update,
            condition=self._HELD,
            values=values,
            names={"#cp": "checkpoint"},
        )

    def request(self, lease: Lease, me: str) -> Lease:
        """Ask the owner of ``lease`` (as observed) to hand it over to ``me``: only while
        that worker still holds it and nobody asked first."""
        if lease.owner is None:
            raise LeaseLost(f"lease {lease.key}: nobody holds it to ask", "NoOwner")
        return self._update(
            lease,
            "request",
            update="SET wantedBy = :me",
            condition="leaseOwner = :was AND attribute_not_exists(wantedBy)",
            values={":me": {"S": me}, ":was": {"S": lease.owner}},
        )

    def hand_over(self, lease: Lease, me: str) -> Lease:
        """Give a lease held to the worker that asked for it, from its checkpoint."""
        if lease.wanted_by is None:
            raise LeaseLost(f"lease {lease.key}: nobody asked for it", "NotWanted")
        return self._update(
            lease,
            "hand-over",
            update="SET leaseOwner = :to, leaseCounter = leaseCounter + :one, "
            "ownerSwitches = if_not_exists(ownerSwitches, :zero) + :one REMOVE wantedBy",
            condition=f"{self._HELD} AND wantedBy = :to",
            values={
                **self._mine(lease, me),
                ":to": {"S": lease.wanted_by},
                ":one": _n(1),
                ":zero": _n(0),
            },
        )

    def release(self, lease: Lease, me: str) -> Lease:
        """Give a lease up (at a clean stop): free at once for another worker."""
        return self._update(
            lease,
            "release",
            update="REMOVE leaseOwner, wantedBy SET leaseCounter = leaseCounter + :one",
            condition=self._HELD,
            values={**self._mine(lease, me), ":one": _n(1)},
        )

    def delete(self, lease: Lease) -> bool:
        """Delete the lease of a shard read to its end and gone from the stream."""
        try:
            guard(
                "dynamodb:DeleteItem",
                partial(
                    self._client.delete_item,
                    TableName=self.name,
                    Key={"leaseKey": {"S": lease.key}},
                    ConditionExpression="#cp = :end",
                    ExpressionAttributeNames={"#cp": "checkpoint"},
                    ExpressionAttributeValues={":end": {"S": SHARD_END}},
                ),
            )
        except ConditionFailed:
            return False
        return True
