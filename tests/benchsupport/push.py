"""The push path measured: events a second through one and three collector processes
reading a Kinesis stream fed as CloudWatch Logs' subscription filters feed it, and the
collectors' CPU per 1,000 events; beside it, the polling path on the same events.

Each push run: a stream of ``shards`` shards on ``motopush`` (moto, one request at a
time); the collectors start on the empty stream and share its shards; once balanced they
are paused (SIGSTOP), the stream is filled with subscription records (gzip'd JSON,
``per_record`` events each, as CloudWatch Logs batches them), and they are resumed: the
time from resume to the last event at the queue socket, and the CPU they spent meanwhile
(user + system, from /proc), are what a backlog of ``events`` costs. moto answers one
request at a time, so above a few thousand records a second the figure is moto's, not
the collectors' (the CPU per 1,000 events is the collectors' own either way).

The polling run times ``aws-wodle run --once`` on one log group holding the same number
of events, less a first run on the empty group (the process's start and an empty cycle),
its CPU from the kernel's accounting of finished children.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchsupport.harness import QuickSink, cpu_of
from conftest import TEST_FLAGS, MotoServer, cli_env, seed, service_xml, write_config
from pushsupport import (
    PushMoto,
    leases,
    settings_text,
    start_collector,
    stop_collectors,
    wait_balanced,
    wait_until,
)

ACCOUNT = "123456789012"
GROUP = "/aws/lambda/bench"
STREAM = "bench-push"
TABLE = "aws-wodle-bench-push"
# Long enough that the pause while the stream is filled never expires a lease.
LEASE_PERIOD = 120


@dataclass(frozen=True)
class PathRun:
    """One measured run: ``path`` is "push" or "polling"; ``processes`` collectors."""

    path: str
    processes: int
    shards: int
    events: int
    seconds: float
    cpu_seconds: float
    lost: int
    repeated: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1000(self) -> float:
        return self.cpu_seconds * 1000 / self.events * 1000 if self.events else 0.0


def _record(index: int, first: int, per_record: int, start: int) -> bytes:
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": GROUP,
        "logStream": f"stream-{index % 16}",
        "subscriptionFilters": ["to-siem"],
        "logEvents": [
            {"id": str(first + j), "timestamp": start + first + j, "message": f"ev-{first + j}"}
            for j in range(per_record)
        ],
    }
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode(), compresslevel=6)


def _fill(moto: PushMoto, events: int, per_record: int) -> None:
    kinesis = moto.client("kinesis")
    start = int(time.time() * 1000)
    batch: list[dict[str, object]] = []
    for index, first in enumerate(range(0, events, per_record)):
        count = min(per_record, events - first)
        data = _record(index, first, count, start)
        batch.append({"Data": data, "PartitionKey": f"key-{index}"})
        if len(batch) == 500:
            kinesis.put_records(StreamName=STREAM, Records=batch)
            batch = []
    if batch:
        kinesis.put_records(StreamName=STREAM, Records=batch)


def _tally(sink: QuickSink, events: int) -> tuple[int, int]:
    got = sink.messages()
    expected = {f"ev-{i}" for i in range(events)}
    return len(expected - set(got)), len(got) - len(set(got))


def measure_push(
    processes: int, *, shards: int = 4, events: int = 100_000, per_record: int = 100
) -> PathRun:
    """A backlog of ``events`` read by ``processes`` collectors sharing ``shards`` shards."""
    folder = Path(tempfile.mkdtemp(prefix="awb"))
    sink = QuickSink(str(folder / "queue"))
    sink.bind()
    moto = PushMoto()
    collectors = []
    try:
        moto.client("kinesis").create_stream(StreamName=STREAM, ShardCount=shards)
        settings = settings_text(
            STREAM, moto.url, lease_period=f"{LEASE_PERIOD}s", lease_table=TABLE
        )
        collectors = [
            start_collector(folder, f"c{i}", settings, sink.path) for i in range(processes)
        ]
        if not wait_balanced(moto, TABLE, processes, shards, 600):
            raise RuntimeError(f"collectors not balanced: {leases(moto, TABLE)}")
        for collector in collectors:
            os.kill(collector.pid, signal.SIGSTOP)
        _fill(moto, events, per_record)
        before = [cpu_of(c.pid) for c in collectors]
        started = time.monotonic()
        for collector in collectors:
            os.kill(collector.pid, signal.SIGCONT)
        done = wait_until(lambda: len(sink.received) >= events, 1800, every=0.05)
        seconds = time.monotonic() - started
        cpu = sum(cpu_of(c.pid) - b for c, b in zip(collectors, before, strict=True))
        if not done:
            raise RuntimeError(f"only {len(sink.received)} of {events} events arrived")
        time.sleep(0.5)
        lost, repeated = _tally(sink, events)
        return PathRun("push", processes, shards, events, seconds, cpu, lost, repeated)
    finally:
        for collector in collectors:
            os.kill(collector.pid, signal.SIGCONT)
        stop_collectors(collectors)
        moto.stop()
        sink.unbind()
        shutil.rmtree(folder, ignore_errors=True)


def measure_polling(*, events: int = 100_000) -> PathRun:
    """The same events in one log group (16 streams), collected by one ``run --once``."""
    folder = Path(tempfile.mkdtemp(prefix="awb"))
    sink = QuickSink(str(folder / "queue"))
    sink.bind()
    moto = MotoServer()
    try:
        logs = moto.client("logs")
        per_stream = -(-events // 16)
        streams = {
            f"stream-{s}": [
                f"ev-{i}" for i in range(s * per_stream, min(events, (s + 1) * per_stream))
            ]
            for s in range(16)
        }
        seed(logs, GROUP, streams)
        config = write_config(folder, service_xml(moto.url, GROUP))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(config),
             "--queue", sink.path, "--state", str(folder / "state.db"), *TEST_FLAGS],
            env=cli_env(), capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise RuntimeError(f"run --once failed: {result.stderr[-2000:]}")
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        wait_until(lambda: len(sink.received) >= events, 60, every=0.05)
        lost, repeated = _tally(sink, events)
        return PathRun("polling", 1, 0, events, seconds, cpu, lost, repeated)
    finally:
        moto.stop()
        sink.unbind()
        shutil.rmtree(folder, ignore_errors=True)


def measure_paths(
    *, events: int = 100_000, shards: int = 4, per_record: int = 100, polling: bool = True
) -> list[PathRun]:
    """Push through one and three collectors, and (``polling``) the polling path."""
    runs = [
        measure_push(1, shards=shards, events=events, per_record=per_record),
        measure_push(3, shards=shards, events=events, per_record=per_record),
    ]
    if polling:
        runs.append(measure_polling(events=events))
    return runs


def paths_table(runs: Sequence[PathRun]) -> str:
    """The runs as a markdown table."""
    lines = [
        "| path | collectors | shards | events | seconds | events/s | CPU ms per 1,000 events "
        "| lost | repeated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        shards = str(run.shards) if run.path == "push" else "-"
        lines.append(
            f"| {run.path} | {run.processes} | {shards} | {run.events:,} | {run.seconds:.1f} "
            f"| {run.events_per_second:,.0f} | {run.cpu_ms_per_1000:.1f} | {run.lost} "
            f"| {run.repeated} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(paths_table(measure_paths(events=count)))
