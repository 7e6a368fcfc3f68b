"""What reads cost per event sent, in-process against the fake: W1, W2 and W3 at a chosen
interval and ``late_every``, with the events lost, repeated and how long each waited.

Run ``python tests/readcost.py [--minutes 60] [--rate 40,200]`` from the worktree root (with
``PYTHONPATH=src:tests``). Workloads (50 streams, events spread over each interval):

- W1, Lambda-like: every event ingested within 3 s of its timestamp.
- W2, mixed: as W1, and 5% of the events 1 to 10 minutes late, from every stream.
- W3, VPC-flow-like: every event 1 to 10 minutes late.

"Reads per event" is the events FilterLogEvents returned over the events sent, counted from
the moment the lookback window is full (the first ``lookback + late_every`` are left out).
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import dataclass, field

from aws_wodle.model import GroupKey
from aws_wodle.poll.grouppass import GroupPass, Outside, Settings
from aws_wodle.poll.pipeline import Tally
from support.fakelogs import FakeLogs, ListSink, MemoryStore

KEY = GroupKey("123456789012", "us-east-1", "app")
SECOND = 1000
MINUTE = 60 * SECOND
LOOKBACK = 15 * MINUTE
SETTLE = 30 * SECOND
STREAMS = 50
WORKLOADS = ("W1", "W2", "W3")


def lateness(workload: str, rng: random.Random) -> int:
    """How long after its timestamp an event of ``workload`` is ingested (ms)."""
    if workload == "W3" or (workload == "W2" and rng.random() < 0.05):
        return rng.randint(MINUTE, 10 * MINUTE)
    return rng.randint(0, 3 * SECOND)


@dataclass
class Result:
    """One run: reads per event (after warm-up), lost and repeated events, and each sent
    event's wait from ingestion to the socket by class (prompt: within 3 s)."""

    workload: str
    interval_s: float
    late_every_s: float
    sent: int
    returned: int
    calls: int
    lost: int
    repeated: int
    prompt_waits: list[int] = field(default_factory=list)
    late_waits: list[int] = field(default_factory=list)

    @property
    def per_event(self) -> float:
        return self.returned / self.sent if self.sent else 0.0

    def line(self) -> str:
        def worst(waits: list[int]) -> str:
            return f"{max(waits) / 1000:.0f} s" if waits else "-"

        def median(waits: list[int]) -> str:
            return f"{statistics.median(waits) / 1000:.0f} s" if waits else "-"

        return (
            f"| {self.workload} | {self.interval_s:g} s | {self.late_every_s:g} s | "
            f"{self.per_event:.2f} | {self.calls} | {self.sent:,} | {self.lost} | "
            f"{self.repeated} | {median(self.prompt_waits)} / {worst(self.prompt_waits)} | "
            f"{median(self.late_waits)} / {worst(self.late_waits)} |"
        )


HEADER = (
    "| workload | interval | late_every | reads per event | FilterLogEvents calls | events "
    "sent | lost | repeated | prompt wait median / max | late wait median / max |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


class Recorder(ListSink):
    """A sink that notes when (fake AWS time) each datagram went out."""

    def __init__(self, logs: FakeLogs) -> None:
        super().__init__()
        self.logs = logs
        self.when: list[int] = []

    def send_all(self, datagrams: object) -> None:
        before = len(self.received)
        super().send_all(datagrams)  # type: ignore[arg-type]
        self.when.extend([self.logs.now] * (len(self.received) - before))


def measure(
    workload: str,
    *,
    interval_s: float,
    late_every_s: float,
    minutes: int = 60,
    rate: tuple[int, int] = (40, 200),
    seed: int = 1,
) -> Result:
    """Run ``workload`` for ``minutes`` of fake time, a cycle every ``interval_s``."""
    rng = random.Random(seed)
    logs = FakeLogs()
    store = MemoryStore()
    sink = Recorder(logs)
    settings = Settings(LOOKBACK, SETTLE, 0, late_every_ms=int(late_every_s * 1000))
    interval = int(interval_s * 1000)
    origin = logs.now
    logs.create_group("app")
    warm = origin + LOOKBACK + int(max(late_every_s, interval_s) * 1000) + 2 * MINUTE
    ingested: dict[str, tuple[int, int]] = {}
    returned_before = 0
    calls_before = 0
    sent_before = 0
    last_put = origin
    # (ingestion, timestamp) of events not ingested yet.
    pending_late: list[tuple[int, int]] = []

    def cycle() -> None:
        GroupPass(
            KEY, logs, Outside(store=store, sink=sink), settings, discard=None, tally=Tally()
        ).run(origin - MINUTE)

    cycle()
    end = origin + minutes * MINUTE
    while logs.now + interval <= end:
        moment = logs.now + interval
        # Events happening in this interval, put at their ingestion (if before the end).
        batch = []
        for _ in range(int(rng.randint(*rate) * interval_s)):
            ts = rng.randint(last_put, moment - 1)
            batch.append((ts + lateness(workload, rng), ts))
        pending_late.extend(batch)
        pending_late.sort()
        due = [pair for pair in pending_late if pair[0] <= moment]
        del pending_late[: len(due)]
        for ingest, ts in due:
            logs.now = ingest
            message = f"{ts}-{ingest}-{len(ingested)}"
            ingested[message] = (ts, ingest)
            logs.put("app", f"s{rng.randrange(STREAMS)}", ts, message, delay=rng.randint(0, 2000))
        last_put = moment
        logs.now = moment
        if returned_before == 0 and moment >= warm:
            returned_before, calls_before = logs.returned, logs.calls["FilterLogEvents"]
            sent_before = len(sink.received)
        cycle()
        _prune(logs, moment - LOOKBACK - int(late_every_s * 1000) - 5 * MINUTE)
    # Let everything ingested so far be sent, then count.
    returned, calls, sent = logs.returned, logs.calls["FilterLogEvents"], len(sink.received)
    logs.now += int(max(late_every_s, interval_s) * 1000) + SETTLE + interval
    cycle()
    logs.now += interval
    cycle()
    got = sink.messages()
    result = Result(
        workload,
        interval_s,
        late_every_s,
        sent=sent - sent_before,
        returned=returned - returned_before,
        calls=calls - calls_before,
        lost=len(set(ingested) - set(got)),
        repeated=len(got) - len(set(got)),
    )
    for message, when in zip(got, sink.when, strict=True):
        ts, ingest = ingested[message]
        waits = result.prompt_waits if ingest - ts <= 3 * SECOND else result.late_waits
        if when <= end:
            waits.append(when - ingest)
    return result


def _prune(logs: FakeLogs, before: int) -> None:
    """Drop events older than any read will look at again (keeps the fake fast)."""
    for name, events in logs.groups["app"].items():
        logs.groups["app"][name] = [s for s in events if s.event.timestamp >= before]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", default="40,200", help="events per second, low,high")
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument(
        "--runs", default="10:0,10:300,300:0,300:300,300:3600", help="interval:late_every, ..."
    )
    args = parser.parse_args()
    low, high = (int(x) for x in args.rate.split(","))
    print(HEADER)
    for workload in args.only.split(","):
        for run in args.runs.split(","):
            interval, late_every = (float(x) for x in run.split(":"))
            result = measure(
                workload,
                interval_s=interval,
                late_every_s=late_every,
                minutes=args.minutes,
                rate=(low, high),
            )
            print(result.line(), flush=True)


if __name__ == "__main__":
    main()
