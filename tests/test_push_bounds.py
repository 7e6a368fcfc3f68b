"""Push end to end against records built to exhaust the collector: a gzip bomb and a swarm
of tiny events put into the stream between CloudWatch Logs' own records are refused, each
with one error line, in bounded memory, and the shard reads on past them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from aws_wodle.manager.forward import QueueForwarder
from aws_wodle.push.leases import TRIM_HORIZON, LeaseTable
from aws_wodle.push.reader import PIECE_DATAGRAMS, Framer, Held, ShardReader
from conftest import Sink
from pushsupport import (
    PushMoto,
    leases,
    settings_text,
    start_collector,
    stop_collectors,
    subscribe,
    wait_until,
)
from test_push_payload import DATA, bomb, swarm

GROUP = "/aws/lambda/payments"
STREAM = "siem-bounds"
TABLE = "aws-wodle-siem-bounds"
# Good events: 20 PutLogEvents calls of 10, each one record, half before the bad records
# and half after them.
PUTS = 20
PER_PUT = 10
# The collector's peak resident memory, VmHWM. At rest it holds about 56 MiB (Python,
# boto3, the collector); refusing the bomb costs its unpacked cap, 8 MiB, and the swarm the
# byte scans of its 6 MiB (about 12 MiB): 72 MiB measured. 100 leaves room for allocator
# noise, not for a record parsed whole (the swarm parsed takes 75 MiB more; the bomb took
# 695 MiB before the bounds, this test 713 MiB).
PEAK_BOUND_MIB = 100
# Records of the piece test: three of 6,000 events make two pieces (12,000, then 6,000).
PIECE_RECORDS = 3
PIECE_EVENTS = 6_000


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _put_good(push: PushMoto, prefix: str, puts: int) -> list[str]:
    """``puts`` PutLogEvents calls into the subscribed group; the messages written."""
    logs = push.client("logs")
    written: list[str] = []
    for number in range(puts):
        batch = [f"{prefix}-{number}-{i}" for i in range(PER_PUT)]
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="app",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": m} for m in batch],
        )
        written.extend(batch)
    return written


def test_a_bomb_between_good_records_is_refused_in_bounded_memory(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """A gzip bomb (2.2 million tiny events) and a swarm (more events than a subscription
    message holds, under the unpacked cap) sit between good records of one shard: every
    good event arrives once, each bad record is named by one error line with its shard and
    sequence number, the checkpoint moves past them, and the collector's peak memory stays
    under the bound."""
    subscribe(push, GROUP, STREAM, 1)
    push.client("logs").create_log_stream(logGroupName=GROUP, logStreamName="app")
    kinesis = push.client("kinesis")
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    written = _put_good(push, "before", PUTS // 2)
    bad = {}
    for name, data in (("bomb", bomb()), ("swarm", swarm())):
        answer = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=name)
        bad[name] = str(answer["SequenceNumber"])
    written += _put_good(push, "after", PUTS // 2)
    last = max(
        int(r["SequenceNumber"])
        for r in kinesis.get_records(
            ShardIterator=kinesis.get_shard_iterator(
                StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"],
            Limit=10_000,
        )["Records"]
    )
    expected = set(written)

    settings = settings_text(STREAM, push.url, lease_period="3s", lease_table=TABLE)
    collector = start_collector(tmp_path, "c0", settings, sink.path)

    def past_the_end() -> bool:
        checkpoint = leases(push, TABLE).get(shard, {}).get("checkpoint") or ""
        return checkpoint.isdigit() and int(checkpoint) >= last

    try:
        arrived = wait_until(lambda: expected <= set(sink.messages()), 120)
        moved = arrived and wait_until(past_the_end, 30)
    finally:
        peak = _peak_rss_mib(collector.pid)
        print(f"\ncollector peak RSS {peak:.0f} MiB (bound {PEAK_BOUND_MIB} MiB)")
        stop_collectors([collector])
    assert arrived, len(sink.received)
    assert moved, leases(push, TABLE)
    lost, repeated = sink.lost_and_repeated(expected)
    log = collector.lines.text()
    print(
        f"bomb and swarm between {len(expected)} good events: lost {lost}, repeated "
        f"{repeated}, received {len(sink.received)}"
    )
    assert (lost, repeated) == (0, 0)
    assert len(sink.received) == len(expected)
    for name, sequence in bad.items():
        lines = [line for line in log.splitlines() if f"record {sequence} " in line]
        assert len(lines) == 1, (name, lines)
        assert " ERROR " in lines[0], lines[0]
        assert f"stream {STREAM}" in lines[0], lines[0]
        assert f"shard {shard}" in lines[0], lines[0]
        assert "skipped" in lines[0], lines[0]
    assert peak < PEAK_BOUND_MIB


def _reader(push: PushMoto, sink: Sink, clock: list[float]) -> tuple[ShardReader, LeaseTable]:
    """An in-process reader of a one-shard stream of three 6,000-event records, holding
    the shard's lease under a clock that moves one second each time it is read."""
    subscribe(push, GROUP, STREAM, 1)
    kinesis = push.client("kinesis")
    for number in range(PIECE_RECORDS):
        events = [
            {"id": str(i), "timestamp": 1, "message": f"piece-{number}-{i}"}
            for i in range(PIECE_EVENTS)
        ]
        data = json.dumps({**DATA, "logEvents": events}).encode()
        kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="p")
    table = LeaseTable(push.client("dynamodb"), TABLE)
    table.ensure()
    key = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    table.create(key)

    def tick() -> float:
        clock[0] += 1.0
        return clock[0]

    lease = table.take(table.leases()[0], "a")
    held = Held(table, lease, "a", period=3.0, clock=tick)
    forwarder = QueueForwarder(sink.path)
    reader = ShardReader(
        kinesis, STREAM, held, forwarder, Framer("us-east-1", False), stop=threading.Event()
    )
    return reader, table


def test_a_batch_is_sent_in_pieces_then_checkpointed(push: PushMoto, sink: Sink) -> None:
    """A batch of three records of 6,000 events goes out in two pieces (the second under a
    lease the reader renews itself, its clock having moved), every event once and in
    order, and the checkpoint then moves to the batch's last record."""
    assert PIECE_DATAGRAMS < PIECE_RECORDS * PIECE_EVENTS
    reader, table = _reader(push, sink, [0.0])
    records = reader.client.get_records(
        ShardIterator=reader.client.get_shard_iterator(
            StreamName=STREAM, ShardId=reader.held.key, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"]
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    try:
        last = records[-1]["SequenceNumber"]
        assert wait_until(lambda: table.leases()[0].checkpoint == last, 30)
    finally:
        reader.stop.set()
        thread.join(10)
    expected = [f"piece-{n}-{i}" for n in range(PIECE_RECORDS) for i in range(PIECE_EVENTS)]
    assert wait_until(lambda: len(sink.received) >= len(expected), 30)
    assert sink.messages() == expected
    assert reader.stats.batches == 1


def test_a_lease_lost_between_pieces_stops_the_batch_unsent_and_unchecked(
    push: PushMoto, sink: Sink
) -> None:
    """The lease is taken by another worker while the reader sends a batch: the first
    piece (sent under a fresh lease) arrives, the second is not sent once renewing the
    now stale lease is refused, and the checkpoint stays where it was."""
    reader, table = _reader(push, sink, [0.0])
    table.take(table.leases()[0], "b")  # taken over as expired by another worker
    assert reader.run() == "lost"
    time.sleep(0.5)
    assert len(sink.received) == 2 * PIECE_EVENTS
    assert sink.messages()[-1] == f"piece-1-{PIECE_EVENTS - 1}"
    lease = table.leases()[0]
    assert (lease.owner, lease.checkpoint) == ("b", TRIM_HORIZON)
