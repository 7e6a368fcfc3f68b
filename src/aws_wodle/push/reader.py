"""One shard read under its lease: records to datagrams, then the checkpoint.

A GetRecords batch is decoded record by record, framed exactly as the polling path frames
events (the raw message, or the envelope when the source asks for it), and sent in pieces
of bounded size, each only while the lease is held; the batch is checkpointed once all of
it was sent, conditionally on the lease: a crash repeats at most the batch in hand, and a
lease lost stops the reader before it sends or reads anything more. A record refused by
``payload`` (past what CloudWatch Logs writes) or undecodable is logged and skipped.

Kinesis serves five GetRecords a second per shard, shared by every consumer: the reader
waits 200 ms between calls, a second after an empty one, and backs off (1 s doubling to
10 s) when throttled, from the same iterator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from ..aws.kinesis import IteratorExpired, guard
from ..errors import AwsError, Throttled
from ..manager.envelope import Envelope
from ..manager.forward import QueueForwarder
from ..poll.pipeline import Tally, encode
from .leases import SHARD_END, TRIM_HORIZON, Lease, LeaseLost, LeaseTable
from .payload import Refused, Subscription, Undecodable, decode
from .shards import stream_arg
from .stats import PushStats, SourceKey

log = logging.getLogger(__name__)

# GetRecords returns at most 10,000 records (or 10 MB) a call: ask for the most.
DEFAULT_BATCH = 10_000
# Kinesis allows 5 GetRecords a second per shard, for all its consumers together.
MIN_GAP_SECONDS = 0.2
# An empty answer means the reader is at the tip of the shard: ask again in a second.
IDLE_SECONDS = 1.0
# Throttled (ProvisionedThroughputExceededException) or failing: first wait, and its cap.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 10.0
# A batch is sent in pieces of at most about this many datagrams or bytes (and one record's
# more: a record's events are framed together), so that what a reader holds is bounded by
# a piece and one record, not by a batch of up to 10,000 records.
PIECE_DATAGRAMS = 10_000
PIECE_BYTES = 4 * 1024 * 1024
SUBSCRIPTION = "CloudWatch Logs subscription message"


@dataclass
class ShardStats:
    """What one shard's reader did; read by the worker and the tests' logs."""

    records: int = 0
    undecodable: int = 0
    control: int = 0
    throttled: int = 0
    batches: int = 0
    tally: Tally = field(default_factory=Tally)


class Held:
    """A lease this worker holds: renewal (from the worker's thread) and checkpoints (from
    the reader's) take turns on it, each conditional on the counter the other left.

    Other workers take it over once its counter has stood still for ``period`` by their
    clocks; ``renewed_at`` (this worker's monotonic clock, when the last raise of the
    counter was asked) tells the reader how long it surely still holds it."""

    def __init__(
        self,
        table: LeaseTable,
        lease: Lease,
        me: str,
        *,
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.me = me
        self.period = period
        self.clock = clock
        self._lease = lease
        self._lock = threading.Lock()
        self.lost = threading.Event()
        # The take that gave this lease raised its counter just before.
        self.renewed_at = clock()

    @property
    def lease(self) -> Lease:
        with self._lock:
            return self._lease

    @property
    def key(self) -> str:
        return self._lease.key

    def _write(self, write: Callable[[Lease], Lease]) -> Lease:
        with self._lock:
            if self.lost.is_set():
                raise LeaseLost(f"lease {self._lease.key} was lost", "LeaseLost")
            try:
                self._lease = write(self._lease)
            except LeaseLost:
                self.lost.set()
                raise
            return self._lease

    def renew(self) -> Lease:
        asked = self.clock()
        lease = self._write(lambda lease: self.table.renew(lease, self.me))
        self.renewed_at = max(self.renewed_at, asked)
        return lease

    def fresh(self) -> None:
        """Make sure the lease is held for at least half a period more, renewing it now
        if the last renewal is older than that (the worker's thread fell behind): a batch
        is sent only while no other worker can take the lease before its checkpoint."""
        if self.clock() - self.renewed_at > self.period / 2:
            self.renew()

    @property
    def wanted(self) -> bool:
        """Whether another worker asked for this lease (seen at the last write)."""
        return self.lease.wanted_by is not None

    def hand_over(self) -> None:
        """Give the lease to the worker that asked for it; it is no longer held here."""
        self._write(lambda lease: self.table.hand_over(lease, self.me))
        self.lost.set()

    def checkpoint(self, position: str, behind_ms: int | None = None) -> Lease:
        return self._write(lambda lease: self.table.checkpoint(lease, self.me, position, behind_ms))

    def release(self) -> None:
        self._write(lambda lease: self.table.release(lease, self.me))
        self.lost.set()


class Framer:
    """Datagrams for a subscription message's events: raw, or in the envelope (whose
    account is the payload's ``owner``, and region the stream's)."""

    def __init__(self, region: str, envelope: bool) -> None:
        self.region = region
        self.envelope = envelope
        self._envelopes: dict[tuple[str, str], Envelope] = {}

    def frame(self, message: Subscription, tally: Tally) -> list[bytes]:
        wrap: Envelope | None = None
        if self.envelope:
            key = (message.owner, message.group)
            wrap = self._envelopes.get(key)
            if wrap is None:
                if len(self._envelopes) > 1000:
                    self._envelopes.clear()
                wrap = self._envelopes[key] = Envelope(message.owner, self.region, message.group)
        where = f"log group {message.group} (account {message.owner})"
        out = []
        for event in message.events:
            data = encode(event, None, f"{where}, stream {event.stream}", tally, wrap)
            if data is not None:
                out.append(data)
        return out


def _arrival_ms(record: dict[str, Any]) -> int:
    stamp = record.get("ApproximateArrivalTimestamp")
    if isinstance(stamp, datetime):
        return int(stamp.timestamp() * 1000)
    return 0


class ShardReader:
    """Reads one shard from its checkpoint until the shard ends, the lease is lost, or a
    stop is requested (between batches: what was sent is checkpointed first)."""

    def __init__(
        self,
        client: Any,
        stream: str,
        held: Held,
        forwarder: QueueForwarder,
        framer: Framer,
        *,
        stop: threading.Event,
        batch: int = DEFAULT_BATCH,
        wait: Callable[[float], bool] | None = None,
        stats: PushStats | None = None,
        source_key: SourceKey = ("", ""),
    ) -> None:
        self.client = client
        self.stream = stream
        self.held = held
        self.forwarder = forwarder
        self.framer = framer
        self.stop = stop
        self.batch = batch
        # Waits that a stop request or a lost lease cut short.
        self._wait = wait or self._interruptible
        self.stats = ShardStats()
        self.figures = stats or PushStats()
        self.source_key = source_key
        # GetRecords' last MillisBehindLatest: stored with each checkpoint.
        self.behind_ms: int | None = None

    def _interruptible(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the reader must end instead."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and not self.held.lost.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.stop.wait(min(left, 0.1))
        return False

    def _iterator(self, position: str) -> str | None:
        kwargs: dict[str, Any] = {**stream_arg(self.stream), "ShardId": self.held.key}
        if position == TRIM_HORIZON:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = position
        answer = guard("kinesis:GetShardIterator", lambda: self.client.get_shard_iterator(**kwargs))
        iterator = answer.get("ShardIterator")
        return str(iterator) if iterator else None

    def run(self) -> str:
        """Read until the end; returns why it ended: ``finished`` (SHARD_END stored),
        ``lost``, ``handed over`` (to a worker that asked for it), ``stopped`` or
        ``failed`` (the worker retries it later)."""
        key = self.held.key
        position = self.held.lease.checkpoint
        if position == SHARD_END:
            return "finished"
        delays = _Backoff()
        iterator: str | None = None
        while True:
            if self.stop.is_set():
                return "stopped"
            if self.held.lost.is_set():
                return "lost"
            try:
                if self.held.wanted:
                    # Between batches: everything sent is checkpointed.
                    to = self.held.lease.wanted_by
                    self.held.hand_over()
                    self.figures.handed_over(self.source_key, "out")
                    log.info("shard %s handed over to %s, who asked for it", key, to)
                    return "handed over"
                if iterator is None:
                    iterator = self._iterator(position)
                    if iterator is None:
                        self.held.checkpoint(SHARD_END)
                        return "finished"
                answer = guard(
                    "kinesis:GetRecords",
                    partial(self.client.get_records, ShardIterator=iterator, Limit=self.batch),
                )
            except Throttled as exc:
                self.stats.throttled += 1
                self.figures.failed(self.source_key, exc.code or "Throttled")
                pause = delays.next()
                log.info("shard %s: %s; waiting %.1f s", key, exc, pause)
                self._wait(pause)
                continue
            except IteratorExpired:
                log.info("shard %s: iterator expired; asking again from the checkpoint", key)
                iterator = None
                continue
            except LeaseLost:
                return "lost"
            except AwsError as exc:
                self.figures.failed(self.source_key, exc.code or "Error")
                self._back_off(delays, f"{exc}; retrying")
                iterator = None
                continue
            delays.reset()
            behind = answer.get("MillisBehindLatest")
            if isinstance(behind, int):
                self.behind_ms = behind
                self.figures.behind(self.source_key, key, behind)
            records = answer.get("Records", [])
            try:
                if records:
                    position = self._forward(records)
                following = answer.get("NextShardIterator")
                if not following:
                    self._checkpoint(SHARD_END)
                    log.info("shard %s read to its end", key)
                    return "finished"
            except LeaseLost:
                log.info("shard %s: lease lost; no longer read here", key)
                return "lost"
            except AwsError as exc:
                # The lease could not be renewed before sending: the batch is read again.
                self._back_off(delays, f"{exc}; reading the batch again")
                iterator = None
                continue
            iterator = str(following)
            self._wait(MIN_GAP_SECONDS if records else IDLE_SECONDS)

    def _back_off(self, delays: _Backoff, what: str) -> None:
        pause = delays.next()
        log.warning("shard %s: %s in %.1f s", self.held.key, what, pause)
        self._wait(pause)

    def _forward(self, records: list[dict[str, Any]]) -> str:
        """Send a batch's events, a piece at a time, then checkpoint its last record; its
        sequence number."""
        piece: list[bytes] = []
        size = 0
        for record in records:
            message = self._decode(record)
            if message is None:
                continue
            for data in self.framer.frame(message, self.stats.tally):
                piece.append(data)
                size += len(data)
            if len(piece) >= PIECE_DATAGRAMS or size >= PIECE_BYTES:
                self._send(piece)
                piece, size = [], 0
        last = str(records[-1]["SequenceNumber"])
        if piece:
            self._send(piece)
        self._checkpoint(last)
        self.stats.records += len(records)
        self.stats.batches += 1
        return last

    def _decode(self, record: dict[str, Any]) -> Subscription | None:
        """A record's subscription message; None for a control message, or for a record
        refused or undecodable, which is counted and logged in one line naming it."""
        try:
            message = decode(bytes(record.get("Data", b"")), _arrival_ms(record))
        except Undecodable as exc:
            self.stats.undecodable += 1
            what = "is refused" if isinstance(exc, Refused) else "is not a " + SUBSCRIPTION
            log.error(
                "kinesis stream %s, shard %s: record %s %s (%s); skipped",
                self.stream,
                self.held.key,
                record.get("SequenceNumber"),
                what,
                exc,
            )
            return None
        if message is None:
            self.stats.control += 1
        return message

    def _send(self, piece: list[bytes]) -> None:
        """Send a piece of a batch, only while the lease is held for half a period more."""
        if self.held.lost.is_set():
            raise LeaseLost(f"lease {self.held.key} was lost", "LeaseLost")
        self.held.fresh()
        self.forwarder.send_all(piece)
        self.figures.sent(self.source_key, len(piece), sum(map(len, piece)))

    def _checkpoint(self, position: str) -> None:
        """Store the position, retrying AWS failures: what was sent must be checkpointed
        unless the lease is lost (then the next owner repeats this batch, no more)."""
        delays = _Backoff()
        while True:
            try:
                self.held.checkpoint(position, self.behind_ms)
                self.figures.checkpointed(self.source_key, self.held.key)
                return
            except LeaseLost:
                raise
            except AwsError as exc:
                self.figures.failed(self.source_key, exc.code or "Error")
                pause = delays.next()
                log.warning(
                    "shard %s: checkpoint %s not stored: %s; retrying in %.1f s",
                    self.held.key,
                    position,
                    exc,
                    pause,
                )
                if not self._wait(pause):
                    raise LeaseLost(
                        f"shard {self.held.key}: stopped before checkpoint {position}", "Stopped"
                    ) from exc


class _Backoff:
    def __init__(self) -> None:
        self._next = BACKOFF_FIRST

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, BACKOFF_CAP)
        return delay

    def reset(self) -> None:
        self._next = BACKOFF_FIRST
