"""The benchmark: a real collector process against moto, behind the counting proxy of ours,
cycle after cycle, with the old module's figures beside ours.

Run ``python tests/bench.py [--only S,G,R,L,A,B,C,D,E,Q,K,W] [--sizes 1000,20000,100000]
[--repeat N] [--write]`` (or ``make bench ARGS=...``): it prints the tables, and with
``--write`` rewrites BENCHMARKS.md at the repository root.

Workloads (issue 9 first, then the earlier ones):

- S: 1 group of 1,000 / 20,000 / 100,000 streams (``--sizes``), each written once with 3
  events hours ago; cycles: first collection, idle, 1% of the streams get 5 events, the host
  clock moved +1 h (libfaketime), and an hour later (host and AWS clocks +1 h).
- G: 200 groups x 10 streams, same cycles.
- R: no ``<regions>``, the group in 1 of the partition's regions; the daemon under a clock
  the benchmark moves 5 minutes a cycle, then an hour.
- L: the lookback's cost: a busy group at 5-minute cycles, ``--lookback 15m`` vs ``0``.
- A, B, C (with the old module's model measured on the same seed), D1, D, E, Q: as before.
- W1, W2, W3 (``--only W`` for all three): reads per event sent with reads split by
  lateness (issue 20): a group of 50 streams at 40-200 events/s, at 10 s and 5-minute
  intervals, ``--late-every`` 0 (today's engine), 5m and 1h in the same run; its section of
  BENCHMARKS.md has markers of its own, so ``--only W --write`` rewrites only that.
- K: the push path (issue 12): events/s and CPU per 1,000 events through one and three
  collectors reading a Kinesis stream, beside polling on the same events; its section of
  BENCHMARKS.md has markers of its own, so ``--only K --write`` rewrites only that.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import itertools
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import boto3
import moto

from benchsupport.harness import (
    PAGE_EVENTS,
    QUOTAS,
    READS,
    STS,
    TESTS,
    Cycle,
    Env,
    Measured,
    MotoHost,
    RunningDaemon,
    by_region,
    now_ms,
    progress,
    quota_seconds,
    show_calls,
)
from benchsupport.push import PathRun, measure_paths, paths_table
from conftest import ROOT

REGION = "us-east-1"
GROUP = "/aws/lambda/orders-api"
HOUR_MS = 3_600_000
OLD_PAGE_STREAMS = 50  # DescribeLogStreams page
# Q's collector runs at most this many times before its loss is counted as final.
MAX_RUNS = 5


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def lambda_stream(index: int) -> str:
    """A Lambda-like stream name: one per container instance."""
    return f"2026/12/01/[$LATEST]{index:032x}"


def flow_stream(index: int) -> str:
    return f"eni-{index:05d}-all"


def flow_group(index: int) -> str:
    return f"/aws/vpc/flow-logs-{index:03d}"


# ------------------------------------------------------------------- the old module


@dataclass(frozen=True)
class GroupLoad:
    """One region and group as the old module meets it in one run: its streams, and how
    many of them have how many new events (``new``: (streams, events each) pairs)."""

    region: str
    streams: int
    new: tuple[tuple[int, int], ...] = ()


def old_module(loads: Iterable[GroupLoad]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """The old module's calls for one run, by reference.md section 9: per region and group
    2 x ceil(N / 50) DescribeLogStreams, per stream ceil(new / 10,000) + 1 GetLogEvents, and
    one GetCallerIdentity. Returns the total and the calls of each region."""
    total: Counter[str] = Counter({STS: 1})
    regions: dict[str, Counter[str]] = {}
    for load in loads:
        calls = Counter(
            {
                "DescribeLogStreams": 2 * ceil_div(load.streams, OLD_PAGE_STREAMS),
                "GetLogEvents": load.streams
                + sum(n * ceil_div(events, PAGE_EVENTS) for n, events in load.new),
            }
        )
        total.update(calls)
        regions.setdefault(load.region, Counter()).update(calls)
    return total, regions


def busiest(regions: dict[str, Counter[str]]) -> float:
    return max((quota_seconds(c) for c in regions.values()), default=0.0)


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One cycle of a workload, its target, and the old module's figures for the same."""

    workload: str
    key: str
    cycle: Cycle
    target: str = ""
    ok: bool | None = None
    old: Counter[str] = field(default_factory=Counter)
    old_regions: dict[str, Counter[str]] = field(default_factory=dict)
    old_note: str = ""

    @property
    def old_total(self) -> int:
        return sum(self.old.values())


def duration(seconds: float) -> str:
    """A short human duration."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def times(old: float, ours: float) -> str:
    """How many times ``ours`` fits in ``old``."""
    if not old or not ours:
        return "-"
    ratio = old / ours
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:,.0f}x"


def verdict(ok: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[ok]


# ---------------------------------------------------------- S and G: priced by change


@dataclass
class Options:
    sizes: list[int]
    repeat: int
    collector_src: str | None


def seed_old(env: Env, group: str, names: Sequence[str], per_stream: int = 3) -> range:
    """Each stream written once, hours ago (older than any lookback): ``per_stream`` events
    1 ms apart, ingested 2 s after their timestamps, streams spread over an hour."""
    base = now_ms() - 3 * HOUR_MS
    step = max(1, HOUR_MS // max(1, len(names)))
    return env.fill(
        REGION, group, names, per_stream, ts=base, ts_stream=step, ts_event=1, ingest_delay=2000
    )


def put_fresh(env: Env, group: str, names: Sequence[str], per_stream: int) -> range:
    """``per_stream`` new events in each stream, ingested now (after the collector's last
    read, as on AWS), 1.5 s after their timestamps; then a wait into the next second of the
    proxy's ``Date`` (1 s steps), so that the next read's clock has passed them, as it
    would have minutes later at a real interval."""
    return env.fill(
        REGION, group, names, per_stream, ts=now_ms() - 1500, ts_event=1, ingest_delay=1500
    )


def change_cycles(env: Env, workload: str, key: str, groups: dict[str, list[str]]) -> list[Row]:
    """The cycles of issue 9's table over seeded ``groups`` (name -> streams): first
    collection, idle, 1% of the streams get 5 events, host clock +1 h, an hour later."""
    rows: list[Row] = []

    def row(cycle: Cycle, new: Callable[[str], tuple[tuple[int, int], ...]]) -> Row:
        total, regions = old_module(
            GroupLoad(REGION, len(names), new(group)) for group, names in groups.items()
        )
        made = Row(workload, key, cycle, old=total, old_regions=regions)
        rows.append(made)
        return made

    first = row(env.once("first collection"), lambda g: ((len(groups[g]), 3),))
    events = 3 * sum(len(s) for s in groups.values())
    limit = 3 + ceil_div(events, PAGE_EVENTS)
    first.target = f"<= 3 + ceil({events:,} / 10,000) = {limit} calls"
    first.ok = first.cycle.total <= limit and not first.cycle.pending
    row(env.once("idle"), lambda _g: ())
    # Every 100th stream, counted across the groups.
    chosen: dict[str, list[str]] = {}
    flat = [(g, name) for g, names in groups.items() for name in names]
    for group, name in flat[::100]:
        chosen.setdefault(group, []).append(name)
    for group, names in chosen.items():
        put_fresh(env, group, names, 5)
    time.sleep(1.2)
    changed = sum(len(n) for n in chosen.values())
    row(
        env.once(f"1% of streams ({changed:,}) get 5 events"),
        lambda g: ((len(chosen.get(g, [])), 5),),
    )
    row(env.once("host clock +1 h (faketime), nothing new", host_offset=3600), lambda _g: ())
    later = env.once(
        "an hour later (host and AWS clocks +1 h), nothing new", host_offset=3600, aws_offset=3600
    )
    row(later, lambda _g: ())
    return rows


def streams_workload(size: int, opts: Options) -> list[Row]:
    key = f"S{size}"
    env = Env.create(key, [GROUP], collector_src=opts.collector_src)
    try:
        names = [lambda_stream(i) for i in range(size)]
        started = time.monotonic()
        seed_old(env, GROUP, names)
        progress(f"{key}: seeded {size:,} streams in {time.monotonic() - started:.1f} s")
        rows = change_cycles(env, f"1 group, {size:,} streams", key, {GROUP: names})
    finally:
        env.close()
    for row in rows[1:]:
        c = row.cycle
        if row.cycle.label.startswith("idle"):
            row.target, row.ok = "<= 2 calls, the same at every size", c.total <= 2
        else:
            limit = 3
            row.target, row.ok = f"<= {limit} calls", c.total <= limit
        if c.repeated or (c.pending and not row.cycle.label.startswith("first")):
            row.ok = False
    return rows


def groups_workload(opts: Options) -> list[Row]:
    key = "G"
    groups = {flow_group(g): [flow_stream(s) for s in range(10)] for g in range(200)}
    env = Env.create(key, list(groups), collector_src=opts.collector_src)
    try:
        for group, names in groups.items():
            seed_old(env, group, names)
        rows = change_cycles(env, "200 groups x 10 streams", key, groups)
    finally:
        env.close()
    rows[0].target, rows[0].ok = "-", None
    idle = rows[1]
    idle.target = "<= 200 CloudWatch Logs calls (one per group)"
    idle.ok = idle.cycle.logs_calls <= 200 and not idle.cycle.repeated
    return rows


# ------------------------------------------------------------------ R: every region


@dataclass
class RegionsResult:
    rows: list[tuple[str, Cycle]]
    regions: int  # of the partition, as botocore lists them
    daemon: Measured
    asks: dict[str, list[float]]  # region lacking the group -> minutes (host clock) asked
    jump: int  # the index of the first cycle after the hour's jump

    @property
    def steady(self) -> list[Cycle]:
        """The cycles 5 minutes apart, after the first."""
        return [c for _, c in self.rows[1 : self.jump]]

    @property
    def idle(self) -> list[int]:
        return [c.total for c in self.steady]

    @property
    def per_cycle(self) -> list[int]:
        """Regions lacking the group asked, in each steady cycle."""
        return [sum(1 for r in by_region(c.moto_calls) if r != REGION) for c in self.steady]

    @property
    def gaps(self) -> list[float]:
        """Minutes between two asks of one region lacking the group."""
        return [b - a for times in self.asks.values() for a, b in itertools.pairwise(times)]

    @property
    def missing(self) -> int:
        return self.regions - 1

    @property
    def hourly(self) -> bool:
        return not self.gaps or min(self.gaps) >= 60

    @property
    def spread(self) -> bool:
        """No steady cycle asks more than a quarter of the regions lacking the group."""
        return max(self.per_cycle, default=0) <= ceil_div(self.missing, 4)

    @property
    def sts(self) -> int:
        return sum(c.calls[STS] for _, c in self.rows)

    @property
    def ok(self) -> bool:
        return max(self.idle) <= 2 and self.hourly and self.spread and self.sts == 1


def partition_regions() -> list[str]:
    return sorted(boto3.session.Session().get_available_regions("logs"))


def regions_workload(
    opts: Options, cycles_before: int = 25, cycles_after: int = 4
) -> RegionsResult:
    """The daemon with no ``<regions>`` and the group in us-east-1 only; the host and AWS
    clocks move 5 minutes a cycle (the wodle's interval) for two hours, then an hour at
    once."""
    key = "R"
    env = Env.create(key, [GROUP], regions="", collector_src=opts.collector_src)
    rows: list[tuple[str, Cycle]] = []
    asks: dict[str, list[float]] = {}
    try:
        seed_old(env, GROUP, [lambda_stream(i) for i in range(10)])
        daemon = RunningDaemon(env)
        try:
            minutes = 0.0
            for index in range(cycles_before + cycles_after):
                if index:
                    step = 60 if index == cycles_before else 5
                    daemon.move(step * 60)
                    minutes += step
                label = f"+{minutes:.0f} min"
                cycle = daemon.cycle(label)
                rows.append((label, cycle))
                for region in by_region(cycle.moto_calls):
                    if region != REGION:
                        asks.setdefault(region, []).append(minutes)
        finally:
            measured = daemon.stop()
    finally:
        env.close()
    return RegionsResult(rows, len(partition_regions()), measured, asks, cycles_before)


# --------------------------------------------------------------- L: the lookback's cost


@dataclass
class LookbackResult:
    lookback: str
    cycles: list[Cycle]
    late: int  # events put more than 2 s after their timestamps
    late_lost: int
    lost: int


LOOKBACK_RATE = 40  # events a second into the busy group
LOOKBACK_STREAMS = 20
LOOKBACK_INTERVAL_MS = 5 * 60_000
LOOKBACK_CYCLES = 7
LOOKBACK_STEADY_FROM = 4  # the window (lookback + interval) is full from this cycle on
LOOKBACK_READ_MARGIN_MS = 30_000  # no events ingested in the 30 s after each read


def lookback_events(
    rng: random.Random, start: int, end: int
) -> tuple[list[tuple[str, int, int]], list[int]]:
    """Events ingested in (start, end], ``LOOKBACK_RATE`` a second: 95% ingested within 2 s
    of their timestamps, 5% 1 to 10 minutes late (VPC flow logs, CloudTrail). Returns the
    events (stream, timestamp, ingestion time) and the indexes of the late ones."""
    count = LOOKBACK_RATE * (end - start) // 1000
    events: list[tuple[str, int, int]] = []
    late: list[int] = []
    for k in range(count):
        ingest = start + (k + 1) * (end - start) // count
        if rng.random() < 0.05:
            lateness = rng.randint(60_000, 600_000)
            late.append(k)
        else:
            lateness = rng.randint(0, 2000)
        events.append((flow_stream(rng.randrange(LOOKBACK_STREAMS)), ingest - lateness, ingest))
    return events, late


def lookback_workload(lookback: str, opts: Options) -> LookbackResult:
    """Cycles 5 minutes apart on a timeline an hour in the past (both clocks moved to each
    cycle's moment), with the same events for every lookback."""
    key = f"L{lookback}"
    env = Env.create(key, [GROUP], collector_src=opts.collector_src)
    rng = random.Random(20261202)
    late_seqs: list[int] = []
    cycles: list[Cycle] = []
    try:
        moment = now_ms() - HOUR_MS
        events, late = lookback_events(rng, moment - 4 * LOOKBACK_INTERVAL_MS, moment)
        for index in range(LOOKBACK_CYCLES + 1):
            if index:
                # Ingested after the last read ended (a cycle here lasts seconds), so that
                # no event is written into AWS's past, until this cycle's moment.
                start = moment + LOOKBACK_READ_MARGIN_MS
                moment += LOOKBACK_INTERVAL_MS
                events, late = lookback_events(rng, start, moment)
            seqs = env.put(REGION, GROUP, events)
            late_seqs.extend(seqs[k] for k in late)
            # Read 2 s after the cycle's moment, in whole seconds (AWS's Date has 1 s steps).
            offset = float(ceil_div(moment - now_ms(), 1000) + 2)
            label = "first collection" if not index else f"cycle {index}"
            cycle = env.once(label, "--lookback", lookback, host_offset=offset, aws_offset=offset)
            cycles.append(cycle)
            if cycle.measured and cycle.measured.wall > LOOKBACK_READ_MARGIN_MS / 1000 - 5:
                progress(f"{key}: {label} outlasted the margin; the next events may be early")
        late_lost = env.ledger.missing(late_seqs)
        lost = env.ledger.pending
    finally:
        env.close()
    return LookbackResult(lookback, cycles, len(late_seqs), late_lost, lost)


# ------------------------------------ issue 20: reads per event sent, split by lateness (W)

W_STREAMS = 50
W_RATE = (40, 200)  # events a second, drawn afresh for every 10-second slot
W_SLOT_MS = 10_000
W_LOOKBACK, W_LOOKBACK_MS = "15m", 15 * 60_000  # the collector's defaults
W_SETTLE, W_SETTLE_MS = "30s", 30_000
W_PROMPT_MS = 3000  # W1's lateness: every event ingested within 3 s of its timestamp
W_LATE_MS = (60_000, 600_000)  # a late event: 1 to 10 minutes
MINUTE_MS = 60_000
# The counted window, the same for every row of an interval: a whole number of sweep
# periods (30 cycles = 5 minutes at 10 s; 12 cycles = 1 hour at 5 minutes).
W_WINDOW_CYCLES = {10_000: 30, 5 * MINUTE_MS: 12}
W_WHAT = {
    "W1": "Lambda-like: every event ingested within 3 s of its timestamp",
    "W2": "mixed: as W1, 5% of the events 1-10 min late, from every stream",
    "W3": "VPC-flow-like: every event 1-10 min late",
}
# (workload, interval in ms, late_every as passed to --late-every, in ms)
W_ROWS: tuple[tuple[str, int, str, int], ...] = (
    ("W1", 10_000, "0", 0),
    ("W1", 10_000, "5m", 5 * MINUTE_MS),
    ("W2", 10_000, "0", 0),
    ("W2", 10_000, "5m", 5 * MINUTE_MS),
    ("W1", 5 * MINUTE_MS, "0", 0),
    ("W1", 5 * MINUTE_MS, "5m", 5 * MINUTE_MS),
    ("W1", 5 * MINUTE_MS, "1h", 60 * MINUTE_MS),
    ("W2", 5 * MINUTE_MS, "0", 0),
    ("W2", 5 * MINUTE_MS, "5m", 5 * MINUTE_MS),
    ("W2", 5 * MINUTE_MS, "1h", 60 * MINUTE_MS),
    ("W3", 5 * MINUTE_MS, "0", 0),
    ("W3", 5 * MINUTE_MS, "5m", 5 * MINUTE_MS),
)


def w_events(
    workload: str, rng: random.Random, start: int, end: int
) -> tuple[list[tuple[str, int, int]], list[bool]]:
    """Events ingested in (start, end], slot by 10-second slot (the slots fall on whole
    multiples of 10 s, so the same seed gives the same events at any interval): the events
    (stream, timestamp, ingestion time) in ingestion order, and which of them are late."""
    events: list[tuple[str, int, int]] = []
    late: list[bool] = []
    slot = start - start % W_SLOT_MS
    while slot < end:
        count = rng.randint(*W_RATE) * W_SLOT_MS // 1000
        for k in range(count):
            ingest = slot + (k + 1) * W_SLOT_MS // count
            stream = lambda_stream(rng.randrange(W_STREAMS))
            is_late = workload == "W3" or (workload == "W2" and rng.random() < 0.05)
            lateness = rng.randint(*W_LATE_MS) if is_late else rng.randint(0, W_PROMPT_MS)
            if start < ingest <= end:
                events.append((stream, ingest - lateness, ingest))
                late.append(is_late)
        slot += W_SLOT_MS
    return events, late


@dataclass
class ReadsResult:
    workload: str
    interval_ms: int
    late_every: str
    late_every_ms: int
    cycles: list[Cycle]  # the counted ones
    sweeps_counted: int  # cycles of the window that read the whole lookback
    aligned: bool  # the window ends with a sweep (and started just after one)
    prompt_waits: list[int]  # ms from ingestion to the cycle's moment, sent in the window
    late_waits: list[int]
    lost: int
    repeated: int
    trim_misses: int  # reads that asked for events the benchmark had dropped from moto
    collections: int  # collector processes run for the row
    wall: float  # seconds the row took
    slowest_cycle: float

    @property
    def returned(self) -> int:
        return sum(c.read[f"FilterLogEvents {REGION}"] for c in self.cycles)

    @property
    def calls(self) -> int:
        return sum(c.calls["FilterLogEvents"] for c in self.cycles)

    @property
    def sent(self) -> int:
        return sum(c.new for c in self.cycles)

    @property
    def per_event(self) -> float:
        return self.returned / self.sent if self.sent else 0.0

    @property
    def prompt_bound_ms(self) -> int:
        """Documented: an event that is not late is sent within one interval plus the
        settle margin of its ingestion."""
        return self.interval_ms + W_SETTLE_MS

    @property
    def late_bound_ms(self) -> int:
        """Documented: a late event within late_every plus the settle margin and one
        interval (late_every 0: as any other event)."""
        return self.late_every_ms + self.interval_ms + W_SETTLE_MS


def w_interval(interval_ms: int) -> str:
    return (
        f"{interval_ms // 1000} s" if interval_ms < MINUTE_MS else f"{interval_ms // MINUTE_MS} min"
    )


def w_key(workload: str, interval_ms: int, late_every: str) -> str:
    return f"{workload}-{w_interval(interval_ms).replace(' ', '')}-{late_every}"


def reads_workload(
    workload: str, interval_ms: int, late_every: str, late_every_ms: int, opts: Options
) -> ReadsResult:
    """The collector (``run --once`` per cycle, ``--late-every`` given explicitly) on a
    timeline in the past, both clocks moved to each cycle's moment; the lookback full of
    history before the first collection; warm-up past lookback + late_every; then the
    counted window of whole sweep periods, begun just after a sweep; then two cycles that
    send what is left (a jump of late_every + settle + interval), for lost and repeated."""
    started = time.monotonic()
    key = w_key(workload, interval_ms, late_every)
    interval = f"{interval_ms // 1000}s"
    env = Env.create(key, [GROUP], interval=interval, collector_src=opts.collector_src)
    rng = random.Random(20_2020)
    window = W_WINDOW_CYCLES[interval_ms]
    # Past lookback + late_every with the split. Today's engine (late_every 0) reads the
    # whole lookback every cycle, full from the first collection on (the history): at 10 s
    # it is counted from its second cycle on (a warm-up would take over a hundred runs); at
    # 5 minutes it warms up as the 5m row does, so that both count the same stretch of
    # events (the rate changes every 10 s, and so does reads per event from one stretch to
    # the next).
    if late_every_ms:
        warm_ms = W_LOOKBACK_MS + late_every_ms + interval_ms
    elif interval_ms >= 5 * MINUTE_MS:
        warm_ms = W_LOOKBACK_MS + 5 * MINUTE_MS + interval_ms
    else:
        warm_ms = interval_ms
    drain_ms = late_every_ms + W_SETTLE_MS + 2 * interval_ms
    # Room for the warm-up, a sweep period to find a sweep in, the window and the drain.
    span = warm_ms + 2 * window * interval_ms + drain_ms + 2 * interval_ms
    moment = now_ms() - span - 2 * MINUTE_MS
    moment -= moment % interval_ms
    first_moment = moment
    ingested: list[int] = []  # by seq: ingestion time
    late_seqs: set[int] = set()
    counted: list[Cycle] = []
    every: list[Cycle] = []
    seen = bytearray()
    counting = False
    prompt_waits: list[int] = []
    late_waits: list[int] = []
    sweeps = 0
    trimmed = moment - W_LOOKBACK_MS - W_LATE_MS[1]
    aligned = False
    slowest = 0.0
    flags = ("--lookback", W_LOOKBACK, "--settle", W_SETTLE, "--late-every", late_every)

    def put(start: int, end: int) -> None:
        events, late = w_events(workload, rng, start, end)
        seqs = env.put(REGION, GROUP, events)
        ingested.extend(ing for _, _, ing in events)
        late_seqs.update(s for s, is_late in zip(seqs, late, strict=True) if is_late)

    def note_sent(at: int, *, record: bool) -> None:
        """The first arrival of each event: its wait, ingestion to the cycle's moment."""
        if len(seen) < len(ingested):
            seen.extend(bytes(len(ingested) - len(seen)))
        for seq in env.last_received:
            if seq < len(seen) and not seen[seq]:
                seen[seq] = 1
                if record:
                    (late_waits if seq in late_seqs else prompt_waits).append(at - ingested[seq])

    def collect(label: str, at: int) -> Cycle:
        nonlocal slowest
        # Read 2 s after the moment, in whole seconds (AWS's Date has 1 s steps).
        offset = float(ceil_div(at - now_ms(), 1000) + 2)
        cycle = env.once(label, *flags, host_offset=offset, aws_offset=offset)
        if cycle.measured:
            slowest = max(slowest, cycle.measured.wall)
            if cycle.measured.wall > W_SETTLE_MS / 1000 - 5:
                progress(f"{key}: {label} outlasted the settle margin; events may be early")
        return cycle

    try:
        # History: the lookback full, late events of the 10 minutes before it included.
        put(moment - W_LOOKBACK_MS - W_LATE_MS[1], moment)
        every.append(collect("first collection", moment))
        note_sent(moment, record=False)
        index = 0
        while True:
            index += 1
            start, moment = moment, moment + interval_ms
            # What the group took in since the last moment; the last read (seconds long,
            # 30 s settle margin) had its fence before any of it.
            put(start, moment)
            recent = sum(1 for t in ingested[-400_000:] if t > moment - W_LOOKBACK_MS)
            cycle = collect(f"cycle {index}", moment)
            every.append(cycle)
            # A read of the whole lookback returns at least its events; a read of prompt
            # events, one interval and the 20 s margin's.
            sweep = cycle.read[f"FilterLogEvents {REGION}"] >= recent // 2
            note_sent(moment, record=counting)
            if counting:
                counted.append(cycle)
                sweeps += sweep
                if len(counted) == window:
                    aligned = sweep
                    break
            elif moment - first_moment >= warm_ms and sweep:
                counting = True  # from the next cycle on: just after a sweep
            if moment - first_moment > span:
                progress(f"{key}: no sweep found after the warm-up")
                break
            # Older than any read asks for again (moto's host counts reads that do), every
            # 5 minutes of the timeline.
            cutoff = moment - W_LOOKBACK_MS - late_every_ms - 2 * interval_ms - 5 * MINUTE_MS
            if cutoff - trimmed >= 5 * MINUTE_MS:
                env.host.trim(REGION, GROUP, cutoff)
                trimmed = cutoff
        every.append(collect("drain: a sweep", moment + drain_ms))
        every.append(collect("drain: the next", moment + drain_ms + interval_ms))
        lost = env.ledger.pending
        repeated = sum(c.repeated for c in every)
        misses = env.host.trim_misses()
    finally:
        env.close()
    return ReadsResult(
        workload, interval_ms, late_every, late_every_ms, counted, sweeps, aligned,
        prompt_waits, late_waits, lost, repeated, misses, len(every),
        time.monotonic() - started, slowest,
    )  # fmt: skip


# ------------------------------------------------------- the earlier workloads, A to Q


@dataclass(frozen=True)
class Shape:
    """What a workload puts into moto: the same layout in every region."""

    regions: tuple[str, ...]
    groups: int
    streams: int  # per group
    busy: int  # streams per group that hold events; the others are empty
    events: int  # per busy stream

    @property
    def total(self) -> int:
        return len(self.regions) * self.groups * self.busy * self.events

    def loads(self, first: bool = True) -> list[GroupLoad]:
        new = ((self.busy, self.events),) if first else ()
        return [GroupLoad(r, self.streams, new) for r in self.regions for _ in range(self.groups)]


@dataclass(frozen=True)
class Classic:
    key: str
    what: str
    shape: Shape
    enforce: bool = False  # the proxy answers ThrottlingException beyond QUOTAS
    after: str | None = None  # runs on the state left by this workload (B after A)
    until_delivered: bool = False
    timeout: float = 900.0


ONE = (REGION,)
THREE = (REGION, "us-west-2", "eu-west-1")
A_SHAPE = Shape(ONE, 1, 500, 500, 20)
CLASSICS: dict[str, Classic] = {
    w.key: w
    for w in (
        Classic("A", "1 group, 500 streams x 20 events, first collection", A_SHAPE),
        Classic("B", "A again with nothing new (same state)", A_SHAPE, after="A"),
        Classic("C", "1 group, 5 streams x 50,000 events", Shape(ONE, 1, 5, 5, 50_000)),
        Classic(
            "D1",
            "1 region x 4 groups x 50 streams (10 with 200 events each)",
            Shape(ONE, 4, 50, 10, 200),
        ),
        Classic(
            "D",
            "3 regions x 4 groups x 50 streams (10 with 200 events each)",
            Shape(THREE, 4, 50, 10, 200),
        ),
        Classic("E", "1 stream x 1,000,000 events", Shape(ONE, 1, 1, 1, 1_000_000)),
        Classic(
            "Q",
            "1 group, 5,000 streams x 20 events, quotas enforced by the proxy",
            Shape(ONE, 1, 5_000, 5_000, 20),
            enforce=True,
            until_delivered=True,
            timeout=1800.0,
        ),
    )
}


def classic_env(workload: Classic, opts: Options) -> Env:
    shape = workload.shape
    groups = [flow_group(g) for g in range(shape.groups)]
    env = Env.create(
        workload.key, groups, ",".join(shape.regions),
        quotas=dict(QUOTAS) if workload.enforce else None, collector_src=opts.collector_src,
    )  # fmt: skip
    started = time.monotonic()
    # Within the last hour, 1 ms apart in each stream, ingested 1 s after their timestamps.
    first = now_ms() - 50 * 60_000
    for region in shape.regions:
        for group in groups:
            names = [flow_stream(s) for s in range(shape.streams)]
            env.fill(region, group, names[: shape.busy], shape.events, ts=first)
            if shape.streams > shape.busy:
                env.fill(region, group, names[shape.busy :], 0)
    progress(
        f"{workload.key}: seeded {shape.total:,} events in "
        f"{len(shape.regions) * shape.groups * shape.streams:,} streams in "
        f"{time.monotonic() - started:.1f} s"
    )
    return env


def collect(env: Env, workload: Classic, label: str) -> list[Cycle]:
    """One measured collection: one process, or for Q as many as it takes (up to 5)."""
    cycles: list[Cycle] = []
    while True:
        cycles.append(env.once(f"{label}, process {len(cycles) + 1}", timeout=workload.timeout))
        if not workload.until_delivered or not env.ledger.pending or len(cycles) >= MAX_RUNS:
            return cycles


@dataclass
class ClassicResult:
    workload: Classic
    runs: list[list[Cycle]]
    old_model: list[Cycle] = field(default_factory=list)  # C only
    floor: list[Cycle] = field(default_factory=list)  # C only: the orjson reader

    def median(self, value: Callable[[list[Cycle]], float]) -> float:
        return statistics.median(value(run) for run in self.runs)

    @property
    def first(self) -> list[Cycle]:
        return self.runs[0]

    @property
    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for cycle in self.first:
            total.update(cycle.calls)
        return total

    @property
    def moto_calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for cycle in self.first:
            total.update(cycle.moto_calls)
        return total

    @property
    def wall(self) -> float:
        return self.median(lambda run: sum(c.measured.wall for c in run if c.measured))

    @property
    def cpu(self) -> float:
        return self.median(lambda run: sum(c.measured.cpu for c in run if c.measured))

    @property
    def peak_mb(self) -> float:
        return self.median(lambda run: max(c.measured.peak_mb for c in run if c.measured))

    @property
    def events(self) -> int:
        return sum(c.new for c in self.first)

    @property
    def events_per_s(self) -> float | None:
        if not self.events:
            return None
        return self.median(
            lambda run: (
                sum(c.new for c in run) / max(1e-9, sum(c.measured.wall for c in run if c.measured))
            )
        )

    @property
    def cpu_ms_per_k(self) -> float | None:
        if not self.events:
            return None
        return self.median(
            lambda run: (
                sum(c.measured.cpu for c in run if c.measured)
                * 1e6
                / max(1, sum(c.new for c in run))
            )
        )

    @property
    def lost(self) -> int:
        return max(run[-1].pending for run in self.runs)

    @property
    def repeated(self) -> int:
        return max(sum(c.repeated for c in run) for run in self.runs)

    def calls_vary(self) -> bool:
        def total(run: list[Cycle]) -> Counter[str]:
            out: Counter[str] = Counter()
            for c in run:
                out.update(c.calls)
            return out

        return any(total(run) != self.calls for run in self.runs[1:])


def old_model_run(env: Env) -> Cycle:
    """The old module's model on the same seed and proxy, from a state of its own."""
    env.fresh_state()
    after = int(datetime.now(timezone.utc).timestamp() * 1000) - 2 * 86_400_000
    command = [
        sys.executable, "-m", "benchsupport.oldmodel", "--endpoint", env.proxy.url,
        "--region", REGION, "--group", flow_group(0), "--queue", env.sink.path,
        "--state", str(env.folder / f"old-module-{env.serial}.db"),
        "--only-logs-after", str(after),
    ]  # fmt: skip
    return env.once("the old module's model", command=command, env={"PYTHONPATH": str(TESTS)})


def floor_run(env: Env) -> Cycle:
    """The orjson reader (benchsupport.orjsonfloor) on the same seed and proxy: the least
    a Python reader of FilterLogEvents spends, start-up included."""
    env.fresh_state()  # a ledger of its own: its events count as new
    after = int(datetime.now(timezone.utc).timestamp() * 1000) - 2 * 86_400_000
    command = [
        sys.executable, "-m", "benchsupport.orjsonfloor", "--endpoint", env.proxy.url,
        "--region", REGION, "--group", flow_group(0), "--queue", env.sink.path,
        "--start-time", str(after),
    ]  # fmt: skip
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return env.once("the orjson floor", command=command, env={"PYTHONPATH": path})


def has_orjson() -> bool:
    return importlib.util.find_spec("orjson") is not None


def run_classic(
    workload: Classic, opts: Options, kept: dict[str, Env]
) -> tuple[ClassicResult, Env]:
    if workload.after is not None:
        env = kept.pop(workload.after, None)
        if env is None:
            env = classic_env(workload, opts)
            progress(f"{workload.key}: a first collection, as {workload.after}, for the state")
            collect(env, CLASSICS[workload.after], "state")
        env.name = workload.key
    else:
        env = classic_env(workload, opts)
    result = ClassicResult(workload, [])
    # C's orjson floor runs alternate with aws-wodle's, so that a shared machine's load
    # weighs on both alike.
    floor = workload.key == "C" and has_orjson()
    try:
        for index in range(opts.repeat):
            if workload.after is None:
                env.fresh_state()
            result.runs.append(collect(env, workload, f"run {index + 1} of {opts.repeat}"))
            if floor:
                result.floor.append(floor_run(env))
        if workload.key == "C":
            for _ in range(opts.repeat):
                result.old_model.append(old_model_run(env))
            if floor:
                ratios = floor_ratios(result)
                if ratios is not None:
                    progress(
                        f"C: {ratios[0]:.2f}x the orjson floor's CPU, {ratios[1]:.2f}x its wall"
                    )
            else:
                progress("C: orjson is not installed: the orjson floor is not measured")
    except BaseException:
        env.close()
        raise
    return result, env


def classic_old(workload: Classic) -> tuple[Counter[str], dict[str, Counter[str]]]:
    return old_module(workload.shape.loads(first=workload.after is None))


def classic_target(
    result: ClassicResult, results: dict[str, ClassicResult]
) -> tuple[str, bool | None]:
    key = result.workload.key
    calls = result.calls
    total = sum(calls.values())
    reads = sum(calls[op] for op in READS)
    if result.lost or result.repeated:
        return f"{result.lost:,} lost, {result.repeated:,} repeated", False
    shape = result.workload.shape
    if key == "A":
        limit = 3 + ceil_div(shape.total, PAGE_EVENTS)
        return f"<= {limit} calls (issue 9: 3 + ceil(events / 10,000))", total <= limit
    if key == "B":
        return "<= 2 calls (issue 9's idle cycle), nothing sent", total <= 2 and result.events == 0
    if key == "C":
        pages = ceil_div(shape.total, PAGE_EVENTS)
        ours = result.cpu_ms_per_k or 0.0
        old = old_cpu_ms_per_k(result)
        ok = reads <= pages and old is not None and ours <= old / 2
        old_text = "not measured" if old is None else f"{old:.1f}"
        return (
            f"<= {pages} read pages: {reads}; CPU per 1,000 events <= half the old module's "
            f"({old_text} ms): {ours:.1f} ms",
            ok,
        )
    if key == "D":
        if "D1" not in results:
            return "n/a: D1 not run", None
        ratio = result.wall / max(1e-9, results["D1"].wall)
        return f"<= 1.5x D1's wall time: {ratio:.2f}x", ratio <= 1.5
    if key == "E":
        return f"< 150 MB peak: {result.peak_mb:.0f} MB", result.peak_mb < 150
    if key == "Q":
        return "every event delivered", True
    return "reference for D", None


def floor_ratios(result: ClassicResult) -> tuple[float, float] | None:
    """aws-wodle's median CPU and wall time over the orjson floor's (medians of the runs),
    or None when the floor was not measured."""
    cpu = [c.measured.cpu for c in result.floor if c.measured and c.new]
    wall = [c.measured.wall for c in result.floor if c.measured and c.new]
    if not cpu:
        return None
    return result.cpu / statistics.median(cpu), result.wall / statistics.median(wall)


def old_cpu_ms_per_k(result: ClassicResult) -> float | None:
    values = [c.measured.cpu * 1e6 / c.new for c in result.old_model if c.measured and c.new]
    return statistics.median(values) if values else None


# ------------------------------------------------------------------------- reporting


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(r) + " |" for r in rows)
    return "\n".join(lines)


CHANGE_HEADER = (
    "workload", "cycle", "calls by operation", "calls", "target", "met",
    "old module's calls (formula)", "old / ours", "quota-s: ours, old",
    "stops keeping up below an interval of: ours, old", "events sent", "events read",
    "lost", "repeated", "peak MB",
)  # fmt: skip


def change_row(row: Row) -> list[str]:
    c = row.cycle
    old_total = row.old_total
    old_qs = quota_seconds(row.old)
    old_interval = busiest(row.old_regions) if row.old_regions else old_qs
    return [
        row.workload,
        c.label,
        show_calls(c.calls),
        f"{c.total:,}",
        row.target or "-",
        verdict(row.ok),
        f"{old_total:,}" + (f" ({row.old_note})" if row.old_note else ""),
        times(old_total, c.total),
        f"{c.quota_s:,.1f}, {old_qs:,.1f}",
        f"{duration(c.busiest_region_quota_s)}, {duration(old_interval)}",
        f"{c.new:,}",
        f"{c.events_read:,}",
        f"{c.pending:,}",
        f"{c.repeated:,}",
        f"{c.measured.peak_mb:.0f}" if c.measured else "-",
    ]


def memory_figures(rows: list[Row]) -> tuple[dict[int, float], dict[int, float]]:
    """Peak RSS (MB) of the collector per S size: over all cycles, and over the cycles after
    the first collection."""
    peaks: dict[int, float] = {}
    later: dict[int, float] = {}
    for r in rows:
        if r.key.startswith("S") and r.cycle.measured:
            size, peak = int(r.key[1:]), r.cycle.measured.peak_mb
            peaks[size] = max(peaks.get(size, 0.0), peak)
            if not r.cycle.label.startswith("first"):
                later[size] = max(later.get(size, 0.0), peak)
    return peaks, later


def targets_section(
    changes: list[Row], regions: RegionsResult | None, classics: dict[str, ClassicResult]
) -> str:
    """Issue 9's targets, one line each: what was measured and whether it is met."""
    body: list[list[str]] = []
    sized = [r for r in changes if r.key.startswith("S")]

    def cycles(prefix: str) -> list[Row]:
        return [r for r in sized if r.cycle.label.startswith(prefix)]

    def line(target: str, picked: list[Row], shown: Callable[[Row], str], ok: bool) -> None:
        if picked:
            measured = "; ".join(f"{int(r.key[1:]):,}: {shown(r)}" for r in picked)
            body.append([target, measured, verdict(ok)])

    first = cycles("first")
    line(
        "1 group, first collection: <= 3 + ceil(events / 10,000) calls", first,
        lambda r: f"{r.cycle.total} (<= {r.target.rsplit('= ', 1)[-1].split()[0]})",
        all(r.ok for r in first),
    )  # fmt: skip
    idle = cycles("idle")
    same = len({r.cycle.total for r in idle}) == 1
    line(
        "1 group, idle: <= 2 calls, the same at every size", idle,
        lambda r: f"{r.cycle.total}", same and all(r.ok for r in idle),
    )  # fmt: skip
    for prefix, target in (
        ("1%", "1 group, 1% of streams get 5 events: <= 3 calls"),
        ("host clock", "1 group, host clock +1 h only, nothing new: <= 3 calls"),
        ("an hour later", "1 group, an hour later (host and AWS clocks), nothing new: <= 3 calls"),
    ):
        picked = cycles(prefix)
        line(target, picked, lambda r: f"{r.cycle.total}", all(r.ok for r in picked))
    g_idle = [r for r in changes if r.key == "G" and r.cycle.label == "idle"]
    if g_idle:
        r = g_idle[0]
        body.append(
            ["200 groups x 10 streams, idle: <= 200 calls (one per group)",
             f"{r.cycle.logs_calls} CloudWatch Logs calls + {r.cycle.calls[STS]} STS",
             verdict(r.ok)]
        )  # fmt: skip
    if regions is not None:
        body.append(
            ["no `<regions>`, group in 1 region: idle <= 2 calls; regions lacking the group "
             "asked again at most hourly, spread over cycles; caller identity asked once",
             f"idle median {statistics.median(regions.idle):g}, mean "
             f"{statistics.mean(regions.idle):.2f}, max {max(regions.idle)}; at most "
             f"{max(regions.per_cycle)} of {regions.missing} re-asked in one cycle; shortest "
             "gap " + (f"{min(regions.gaps):g} min" if regions.gaps else "-")
             + f"; GetCallerIdentity {regions.sts}",
             verdict(regions.ok)]
        )  # fmt: skip
    if "C" in classics:
        c = classics["C"]
        _, ok = classic_target(c, classics)
        pages = sum(c.calls[op] for op in READS)
        ours, old = c.cpu_ms_per_k or 0.0, old_cpu_ms_per_k(c)
        cpu = "the old module's not measured"
        if old:
            cpu = f"{ours:.1f} ms vs the old module's model {old:.1f} ms ({ours / old:.2f}x)"
        body.append(
            ["busy streams C (5 x 50,000 events), first collection: <= 25 read pages; CPU per "
             "1,000 events <= half the old module's", f"{pages} pages; {cpu}", verdict(ok)]
        )  # fmt: skip
    peaks, _ = memory_figures(changes)
    if len(peaks) >= 2:
        small, large = min(peaks), max(peaks)
        ratio = peaks[large] / peaks[small]
        body.append(
            [f"memory: peak RSS {small:,} -> {large:,} streams <= 1.15x",
             f"{peaks[small]:.1f} -> {peaks[large]:.1f} MB: {ratio:.3f}x", verdict(ratio <= 1.15)]
        )  # fmt: skip
    return md_table(("target (issue 9)", "measured", "met"), body)


def change_summary(rows: list[Row]) -> list[str]:
    lines = []
    idle = [
        (r.key, r.cycle.total) for r in rows if r.key.startswith("S") and r.cycle.label == "idle"
    ]
    if idle:
        same = len({n for _, n in idle}) == 1
        shown = ", ".join(f"{int(k[1:]):,} streams {n}" for k, n in idle)
        lines.append(
            f"- Idle cycle at every size: {shown} calls: "
            f"{'the same' if same else '**not the same**'} at every size."
        )
    peaks, later = memory_figures(rows)
    if len(peaks) >= 2:
        small, large = min(peaks), max(peaks)
        ratio = peaks[large] / peaks[small]
        shown = ", ".join(f"{size:,} streams {mb:.0f} MB" for size, mb in sorted(peaks.items()))
        lines.append(
            f"- Memory: peak RSS of the collector over all cycles: {shown}; {large:,} / "
            f"{small:,} streams = {ratio:.3f}x (target <= 1.15x): {verdict(ratio <= 1.15)}."
        )
        full = [size for size in sorted(peaks) if 3 * size >= PAGE_EVENTS]
        if ratio > 1.15 and 3 * small < PAGE_EVENTS and len(full) >= 2:
            lines.append(
                f"  The first collection of {small:,} streams reads its {3 * small:,} events in "
                "one page, that of the larger groups full 10,000-event pages: between sizes "
                f"with full pages the peak moved {peaks[full[-1]] / peaks[full[0]]:.2f}x "
                f"({full[0]:,} -> {full[-1]:,} streams); in the cycles after the first, "
                f"{later[small]:.0f} MB at {small:,} and {later[large]:.0f} MB at {large:,} "
                f"streams: {later[large] / later[small]:.2f}x."
            )
    return lines


def regions_section(result: RegionsResult) -> str:
    header = (
        "cycle (host and AWS clocks)", "calls by operation", "calls", "us-east-1 calls",
        "regions lacking the group asked", "events sent",
    )  # fmt: skip
    body = []
    for label, c in result.rows:
        regions = by_region(c.moto_calls)
        home = sum(regions.get(REGION, Counter()).values())
        others = sorted(r for r in regions if r != REGION)
        body.append(
            [label, show_calls(c.calls), f"{c.total:,}", f"{home}",
             f"{len(others)}" + (f" ({', '.join(others)})" if 0 < len(others) <= 4 else ""),
             f"{c.new:,}"]
        )  # fmt: skip
    after = result.rows[result.jump :]
    idle, per_cycle, gaps, missing = result.idle, result.per_cycle, result.gaps, result.missing
    steady, sts, spread, hourly, ok = (
        result.steady,
        result.sts,
        result.spread,
        result.hourly,
        result.ok,
    )
    lines = [
        md_table(header, body),
        "",
        f"- {result.regions} regions of the partition (botocore's list for CloudWatch Logs), "
        f"the group in {REGION} only; {missing} lack it.",
        f"- Idle cycles 5 minutes apart ({len(steady)}, after the first): median "
        f"{statistics.median(idle):g} calls, mean {statistics.mean(idle):.2f}, at most "
        f"{max(idle)} (target <= 2).",
        f"- Regions lacking the group asked again in those cycles: {sum(per_cycle)} asks, at "
        f"most {max(per_cycle)} in one cycle (spread: at most a quarter of the {missing}, "
        f"{ceil_div(missing, 4)}: {verdict(spread)}); shortest gap between two asks of one "
        "region, over the whole run: "
        + (f"{min(gaps):g} min" if gaps else "none asked twice")
        + f" (at most hourly: {verdict(hourly)}).",
        "- After the clocks jumped an hour (no cycle in between, as after a stopped daemon): "
        + ", ".join(f"{c.total} calls" for _, c in after)
        + ".",
        f"- GetCallerIdentity: {sts} call(s) over the daemon's {len(result.rows)} cycles and "
        f"{result.rows[-1][0].strip('+')} of clock (static keys, one access key id for the "
        f"whole run; target: once): {verdict(sts == 1)}.",
        f"- Met: {verdict(ok)}. The daemon's peak RSS {result.daemon.peak_mb:.0f} MB; exit "
        f"code {result.daemon.code} after SIGTERM. (Its CPU, {result.daemon.cpu:.0f} s over "
        "the run, is mostly libfaketime's: it reads the clock file on every clock call.)",
        "- The old module: with no `<regions>` it walks its own list of 33 commercial "
        "regions and the first region lacking the group ends its run (reference.md section "
        "5), so it cannot collect this workload at all unless the group's region comes first.",
    ]
    return "\n".join(lines)


def lookback_section(results: list[LookbackResult]) -> str:
    header = (
        "lookback", "read pages per cycle", "events read per cycle", "events sent per cycle",
        "read / sent", "quota-s per cycle", "late events (1-10 min) lost", "all lost",
    )  # fmt: skip
    body = []
    for r in results:
        steady = r.cycles[LOOKBACK_STEADY_FROM:]
        pages = statistics.mean(c.pages for c in steady)
        read = statistics.mean(c.events_read for c in steady)
        sent = statistics.mean(c.new for c in steady)
        qs = statistics.mean(c.quota_s for c in steady)
        body.append(
            [r.lookback, f"{pages:.1f}", f"{read:,.0f}", f"{sent:,.0f}",
             f"{read / sent:.2f}" if sent else "-", f"{qs:.2f}",
             f"{r.late_lost:,} of {r.late:,}", f"{r.lost:,}"]
        )  # fmt: skip
    per_cycle = LOOKBACK_RATE * LOOKBACK_INTERVAL_MS // 1000
    lines = [
        md_table(header, body),
        "",
        f"One group of {LOOKBACK_STREAMS} streams written {LOOKBACK_RATE} events a second "
        f"({per_cycle:,} per 5-minute cycle), 95% ingested within 2 s of their timestamps and "
        "5% 1 to 10 minutes late; cycles 5 minutes apart on a timeline an hour in the past "
        "(the collector's host clock through libfaketime and AWS's, the proxy's `Date`, moved "
        f"to each cycle's moment); per-cycle figures are the means of cycles "
        f"{LOOKBACK_STEADY_FROM} to {LOOKBACK_CYCLES}, once the window is full. A read covers "
        "the lookback plus the interval, so at a 5-minute interval the 15-minute lookback "
        "reads each event about (15 + 5) / 5 = 4 times.",
    ]
    return "\n".join(lines)


def w_target(result: ReadsResult, today: ReadsResult | None) -> tuple[str, bool | None]:
    """Issue 20's target for this row's reads per event, and whether it is met."""
    baseline = round(today.per_event, 2) if today is not None else None
    ours = round(result.per_event, 2)
    if not result.late_every_ms:
        return "today's engine", True
    if result.interval_ms == 10_000:
        return "<= 8", ours <= 8
    no_more = baseline is not None and ours <= baseline
    shown = f"{baseline:.2f}" if baseline is not None else "?"
    if result.late_every_ms >= 60 * MINUTE_MS:
        return f"<= 2.5 (late events up to an hour); today {shown}", ours <= 2.5 and no_more
    return f"no more than today ({shown})", no_more if baseline is not None else None


def w_held(result: ReadsResult) -> bool:
    """What every row must hold: 0 lost, 0 repeated, waits within the documented bounds,
    a window of whole sweep periods, no read asking for what the benchmark dropped."""
    return (
        result.lost == 0
        and result.repeated == 0
        and result.trim_misses == 0
        and result.aligned
        and max(result.prompt_waits, default=0) <= result.prompt_bound_ms
        and max(result.late_waits, default=0) <= result.late_bound_ms
    )


def reads_section(results: list[ReadsResult], command: str) -> str:
    def waits(values: list[int], bound: int) -> str:
        if not values:
            return "-"
        return (
            f"{statistics.median(values) / 1000:.0f} s / {max(values) / 1000:.0f} s "
            f"(bound {bound / 1000:.0f} s)"
        )

    header = (
        "workload", "interval", "late_every", "reads per event sent", "FilterLogEvents calls",
        "events sent", "lost", "repeated", "prompt wait median / max", "late wait median / max",
        "counted cycles (sweeps)", "target", "met", "row took",
    )  # fmt: skip
    today = {(r.workload, r.interval_ms): r for r in results if not r.late_every_ms}
    body = []
    for r in results:
        target, ok = w_target(r, today.get((r.workload, r.interval_ms)))
        met = ok is not None and ok and w_held(r)
        body.append(
            [r.workload, w_interval(r.interval_ms),
             f"{r.late_every} (today)" if not r.late_every_ms else r.late_every,
             f"{r.per_event:.2f}", f"{r.calls:,}", f"{r.sent:,}", f"{r.lost:,}",
             f"{r.repeated:,}", waits(r.prompt_waits, r.prompt_bound_ms),
             waits(r.late_waits, r.late_bound_ms), f"{len(r.cycles)} ({r.sweeps_counted})",
             target, verdict(met if ok is not None else None),
             f"{r.wall / 60:.1f} min, {r.collections} runs"]
        )  # fmt: skip
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    misses = sum(r.trim_misses for r in results)
    lines = [
        "## Reads per event sent, split by lateness (issue 20)",
        f"Repeat with `{command}`. Measured {date} on {machine()}, {code_version(None)}.",
        "",
        md_table(header, body),
        "",
        f"One group of {W_STREAMS} streams taking {W_RATE[0]} to {W_RATE[1]} events a second "
        "(a rate drawn afresh for every 10 seconds, the same events for every row of a "
        "workload): " + "; ".join(f"{k} {v}" for k, v in W_WHAT.items()) + ". The collector "
        f"is `run --once` per cycle with the defaults `--lookback {W_LOOKBACK} --settle "
        f"{W_SETTLE}` and `--late-every` given in every row (0: today's engine, every cycle "
        "reads the whole lookback), on a timeline in the past, its host clock (libfaketime) "
        "and AWS's (the proxy's `Date`) moved to each cycle's moment. Before the first "
        "collection the group already holds the lookback's events (and the 10 minutes' "
        "before, for late ones); the warm-up runs past lookback + late_every + one interval; "
        "then the counted window begins just after a sweep (a cycle that reads the whole "
        "lookback) and lasts the same for every row of an interval, whole sweep periods "
        "ending with a sweep: 30 cycles (5 minutes) at 10 s, 12 cycles (an hour) at 5 "
        "minutes. Reads per event sent: the events FilterLogEvents returned (counted in "
        "front of moto) over the distinct events that reached the socket, in that window. "
        "Waits: from an event's ingestion time to the moment of the cycle that sent it, on "
        "the simulated timeline, for the events first sent in the window; prompt = ingested "
        "within 3 s of its timestamp, late = 1 to 10 minutes. The bounds are the documented "
        "ones: an event that is not late within one interval plus the settle margin, a late "
        "one within late_every plus the settle margin and one interval. Lost and repeated "
        "count the whole row, after two more cycles (a jump of late_every + settle + two "
        "intervals) that send what is left. Met: the target, 0 lost, 0 repeated, every wait "
        "within its bound and the window whole sweep periods.",
        "",
        "The benchmark's moto answers FilterLogEvents from a time index (the same pages, "
        "tokens and order as moto's own scan, which builds every stored event's answer on "
        "every page) and drops events stamped before any read asks for again (lookback + "
        "late_every + two intervals + 5 minutes before the cycle); reads that asked for "
        f"dropped times: {misses} (each would have been answered short).",
        "",
    ]
    return "\n".join(lines)


# The W section (issue 20) has a block of its own, so that `--only W --write` leaves the rest.
READS_BEGIN = "<!-- bench:reads:begin (written by tests/bench.py --write with W) -->"
READS_END = "<!-- bench:reads:end -->"


CLASSIC_HEADER = (
    "workload", "what", "calls by operation", "calls", "old module's calls (formula)",
    "old / ours", "quota-s: ours, old", "stops keeping up below an interval of: ours, old",
    "wall s (median)", "collector CPU s", "CPU ms per 1,000 events", "moto CPU s", "peak MB",
    "events/s", "lost", "repeated", "target", "met",
)  # fmt: skip


def classic_row(result: ClassicResult, results: dict[str, ClassicResult]) -> list[str]:
    calls = result.calls
    total = sum(calls.values())
    old, old_regions = classic_old(result.workload)
    old_total = sum(old.values())
    ours_interval = max(
        (quota_seconds(c) for c in by_region(result.moto_calls).values()), default=0.0
    )
    eps, cpk = result.events_per_s, result.cpu_ms_per_k
    text, ok = classic_target(result, results)
    return [
        result.workload.key,
        result.workload.what,
        show_calls(calls) + (" (varied between runs)" if result.calls_vary() else ""),
        f"{total:,}",
        f"{old_total:,}",
        times(old_total, total),
        f"{quota_seconds(calls):,.1f}, {quota_seconds(old):,.1f}",
        f"{duration(ours_interval)}, {duration(busiest(old_regions))}",
        f"{result.wall:.2f}",
        f"{result.cpu:.2f}",
        "-" if cpk is None else f"{cpk:.1f}",
        f"{result.median(lambda run: sum(c.moto_cpu for c in run)):.1f}",
        f"{result.peak_mb:.0f}",
        "-" if eps is None else f"{eps:,.0f}",
        f"{result.lost:,}",
        f"{result.repeated:,}",
        text,
        verdict(ok),
    ]


def old_model_section(result: ClassicResult) -> str:
    header = (
        "collector", "calls by operation", "read pages", "wall s", "CPU s",
        "CPU ms per 1,000 events", "peak MB", "events sent", "lost", "repeated",
    )  # fmt: skip
    body = []
    ours = result.first[0]
    pairs = [("aws-wodle", ours), *(("the old module's model", c) for c in result.old_model[:1])]
    for name, c in pairs:
        m = c.measured
        assert m is not None
        body.append(
            [name, show_calls(c.calls), f"{c.pages}", f"{m.wall:.2f}", f"{m.cpu:.2f}",
             f"{m.cpu * 1e6 / c.new:.1f}" if c.new else "-", f"{m.peak_mb:.0f}", f"{c.new:,}",
             f"{c.pending:,}", f"{c.repeated:,}"]
        )  # fmt: skip
    old = old_cpu_ms_per_k(result)
    ours_cpk = result.cpu_ms_per_k or 0.0
    lines = [md_table(header, body)]
    if old:
        lines += [
            "",
            f"CPU per 1,000 events: aws-wodle {ours_cpk:.1f} ms (median of {len(result.runs)} "
            f"run(s)), the old module's model {old:.1f} ms (median of {len(result.old_model)}): "
            f"{ours_cpk / old:.2f} of it (target <= 0.5).",
        ]
    ratios = floor_ratios(result)
    if ratios is not None:
        floor_cpu = statistics.median(c.measured.cpu for c in result.floor if c.measured)
        floor_wall = statistics.median(c.measured.wall for c in result.floor if c.measured)
        lines += [
            "",
            f"The orjson floor (benchsupport/orjsonfloor.py: FilterLogEvents through "
            f"botocore, each body decoded by orjson, a blocking send per event), median of "
            f"{len(result.floor)}: CPU {floor_cpu:.2f} s, wall {floor_wall:.2f} s; aws-wodle "
            f"(run --once, start-up included) CPU {result.cpu:.2f} s, wall {result.wall:.2f} s: "
            f"{ratios[0]:.2f}x its CPU (target <= 1.3), {ratios[1]:.2f}x its wall time.",
        ]
    model = result.old_model[0] if result.old_model else None
    if model is not None:
        lines += [
            "",
            f"Quota: aws-wodle's {ours.pages} FilterLogEvents pages cost {ours.quota_s:.1f} "
            f"quota-s, the old module's {model.pages} GetLogEvents pages and "
            f"{model.calls['DescribeLogStreams']} DescribeLogStreams {model.quota_s:.1f}: "
            "FilterLogEvents' quota (5/s) is half GetLogEvents' (10/s), so busy streams cost "
            "more quota-seconds per event read this way. Wall time and events/s here are "
            "moto's: its FilterLogEvents scans every event of the group on each page (moto "
            f"CPU {ours.moto_cpu:.1f} s for aws-wodle's run, {model.moto_cpu:.1f} s for the "
            "model's GetLogEvents).",
        ]
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{len(os.sched_getaffinity(0))} CPUs ({model}), Python {platform.python_version()}, "
        f"boto3 {boto3.__version__}, moto {moto.__version__}"
    )


def compile_collector(collector_src: str | None) -> None:
    """Byte-compile the collector's modules, as installing it does (pip, the .deb): with
    PYTHONDONTWRITEBYTECODE set (as on this machine) every collector process would compile
    them again, some 50 ms of CPU that no installed collector spends."""
    folder = Path(collector_src) if collector_src else ROOT / "src"
    if not compileall.compile_dir(str(folder), quiet=1):
        raise SystemExit(f"cannot byte-compile the collector in {folder}")


def code_version(collector_src: str | None) -> str:
    """The commit measured, and whether src/ had changes not yet committed."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "code version unknown"
    where = f"collector from {collector_src}" if collector_src else f"commit {commit}"
    return where + (" with uncommitted changes in src/" if dirty and not collector_src else "")


NOTES = """\
How it is measured: moto runs in a process of its own (`tests/benchsupport/motohost.py`),
filled directly through moto's backend (100,000 streams in seconds instead of minutes over
HTTP), with each event's timestamp and ingestion time set as the workload says. The
collector is a real process (`python -m aws_wodle run --once --settle 0s --late-every 0`
per cycle on a kept state file; the daemon for R) pointed at an HTTP proxy of ours in
front of moto (`tests/awsproxy.py`), which counts the calls by operation (calls include
GetCallerIdentity, one per `--once` process). A WSGI layer of ours in front of moto's
application counts the calls by region and the events moto's answers held ("events read").
The collector sends to a bound Unix datagram socket that counts what arrives; every seeded
message is distinct: lost = put and never received, repeated = received more than once.
Wall time, CPU (user + system) and peak RSS are the collector process's own (`wait4`
rusage through a small launcher), its modules byte-compiled first as an installation does.
The host clock is moved with libfaketime (wall clock only), AWS's by shifting the proxy's
`Date` header by the same amount; moto's data does not move.

quota-s: the calls' cost in seconds of CloudWatch Logs' archived request quotas per
account and region (GetLogEvents 10/s, FilterLogEvents 5/s, DescribeLogStreams 5/s,
DescribeLogGroups 5/s; STS costs none), summed over operations. A cycle that costs q
quota-s in its busiest region cannot be repeated more often than every q seconds:
"stops keeping up below an interval of". The quotas are shared with every other reader of
the account and region.

The old module's calls are the formula of reference.md section 9 for the same cycle (per
region and group 2 x ceil(N / 50) DescribeLogStreams, per stream ceil(new events / 10,000)
+ 1 GetLogEvents, one GetCallerIdentity per run). Its CPU figure is measured: a model of its
documented per-event work (`tests/benchsupport/oldmodel.py`: GetLogEvents per stream through
boto3 with botocore's normal parsing, until the first empty page; per event the JSON attempt
and the "None" regex of its discard check, and a new datagram socket; state committed at
the end) collecting C's seed through the same proxy to the same socket, in the same run.

moto differs from AWS in ways that matter here: its FilterLogEvents scans every event of
the group on each page (so wall times of busy groups are moto's), and it lists every stream
of the group in `searchedLogStreams`, which AWS has answered as an empty list since May
2020: the benchmark's layer in front of moto answers an empty list too (`--moto-searched-streams`
keeps moto's list); its stream fields are never stale. Wall times and events/s include
moto's time on the same 2 CPUs: events/s is a lower bound of the collector's own speed."""


def document(
    *,
    opts: Options,
    changes: list[Row],
    regions: RegionsResult | None,
    lookbacks: list[LookbackResult],
    classics: dict[str, ClassicResult],
    command: str,
) -> str:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks",
        f"Repeat with `{command}` (the script is `tests/bench.py`; `--only S,G,R,L,A,B,C,D,E,Q,K` "
        "picks workloads, `--sizes` the stream counts of S). Every figure below comes from "
        "that run.",
        f"Measured {date} on {machine()}, {code_version(opts.collector_src)}; load "
        f"average (1 min) {LOAD_AT_START:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
        "end (wall times and events/s suffer when other work shares the 2 CPUs; call counts "
        "do not).",
    ]
    if changes or regions is not None or "C" in classics:
        parts += ["## Targets", targets_section(changes, regions, classics)]
    if changes:
        parts += [
            "## A cycle costs what changed (issue 9)",
            "Each S row is 1 group whose streams were each written once, 3 events, hours ago "
            "(older than the lookback); G is 200 groups x 10 such streams. Cycles run one "
            "after another on one state file, with `--settle 0s --late-every 0` (every read "
            "a sweep). With a settle margin, the read after a first collection reads its whole "
            'range once more (README, "After a full read"): the idle row would then cost '
            "what the first collection cost.",
            md_table(CHANGE_HEADER, (change_row(r) for r in changes)),
            "\n".join(change_summary(changes)),
        ]
    if regions is not None:
        parts += [
            "## No `<regions>`: every region of the partition, the group in one (issue 9)",
            "The daemon (`aws-wodle run`, a 5-minute interval) under libfaketime: after each "
            "cycle the benchmark moves the host clock and AWS's (the proxy's `Date`) 5 "
            "minutes on, then one hour at once; each line is one cycle.",
            regions_section(regions),
        ]
    if "C" in classics and classics["C"].old_model:
        parts += [
            "## Busy streams: C against the old module's model, same seed, same run",
            old_model_section(classics["C"]),
        ]
    if lookbacks:
        parts += ["## What the lookback costs", lookback_section(lookbacks)]
    if classics:
        parts += [
            "## The earlier workloads",
            md_table(CLASSIC_HEADER, (classic_row(r, classics) for r in classics.values())),
            "\n".join(classic_summary(classics)),
        ]
    parts.append(NOTES)
    parts.append(f"The whole run took {(time.monotonic() - STARTED_AT) / 60:.1f} minutes.")
    return "\n\n".join(p for p in parts if p) + "\n"


def classic_summary(results: dict[str, ClassicResult]) -> list[str]:
    lines = []
    if "D" in results and "D1" in results:
        d, d1 = results["D"], results["D1"]
        lines.append(
            f"- D vs D1: 3 regions took {d.wall:.2f} s, the same shape in one region "
            f"{d1.wall:.2f} s: {d.wall / max(1e-9, d1.wall):.2f}x (target <= 1.5x)."
        )
    if "Q" in results:
        q = results["Q"]
        runs = statistics.median(len(r) for r in q.runs)
        throttled = sum(c.throttled for c in q.first)
        lines.append(
            f"- Q: {q.workload.shape.total:,} events over {runs:g} collector run(s) in "
            f"{q.wall:.1f} s (median), {q.lost:,} lost, {q.repeated:,} repeated; {throttled:,} "
            f"of its {sum(q.calls.values()):,} calls were answered ThrottlingException by the "
            "proxy (quotas enforced: "
            + ", ".join(f"{op} {rate:g}/s" for op, rate in QUOTAS.items())
            + ")."
        )
    for result in results.values():
        codes = sorted({c.measured.code for run in result.runs for c in run if c.measured})
        if codes != [0]:
            lines.append(f"- {result.workload.key}: the collector exited with {codes}.")
    return lines


# BENCHMARKS.md: what this script writes lies between these markers; the rest of the file
# (sections written by hand) is kept as it is.
BEGIN = "<!-- bench:begin (written by tests/bench.py --write) -->"
END = "<!-- bench:end -->"
# K (the push path) has a block of its own, so that `--only K --write` leaves the rest.
PUSH_BEGIN = "<!-- bench:push:begin (written by tests/bench.py --write with K) -->"
PUSH_END = "<!-- bench:push:end -->"
HAND_WRITTEN = "Written by hand"


def hand_written_sections(text: str) -> str:
    """The ``##`` sections of an unmarked BENCHMARKS.md that say they were written by hand."""
    sections: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("## ") or line.startswith("# "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    kept = [s for s in sections if s[0].startswith("## ") and HAND_WRITTEN in "\n".join(s)]
    return "\n".join("\n".join(s).strip() + "\n" for s in kept)


def write_push(path: Path, generated: str, begin: str = PUSH_BEGIN, end: str = PUSH_END) -> None:
    """Put a section with markers of its own (the push path's, or ``begin`` and ``end``)
    between them in ``path``, at the end when new."""
    old = path.read_text() if path.exists() else ""
    block = f"{begin}\n{generated}{end}"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        path.write_text(head + block + rest.split(end, 1)[1])
        return
    path.write_text(old.rstrip("\n") + "\n\n" + block + "\n")


def push_section(runs: Sequence[PathRun], command: str) -> str:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "## Push: Kinesis subscription, one and three collectors (issue 12)",
            f"Repeat with `{command}`. Measured {date} on {machine()}, {code_version(None)}.",
            "",
            paths_table(runs),
            "",
            "A backlog on a stream of 4 shards fed in CloudWatch Logs' subscription format "
            "(100 events a record), read by collectors that were balanced on the empty stream "
            "and paused while it filled; the polling row is `run --once` on one group holding "
            "the same events. moto serves one request at a time, so events/s is a lower bound "
            "set by moto; the CPU per 1,000 events is the collectors' own.",
            "",
        ]
    )


def write_benchmarks(path: Path, generated: str) -> None:
    """Put ``generated`` between the markers of ``path``, keeping what is outside them."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}")
        return
    kept = hand_written_sections(old)
    path.write_text(f"{BEGIN}\n{generated}{END}\n" + (f"\n{kept}" if kept else ""))


# ------------------------------------------------------------------------------ main

FAMILIES = ("S", "G", "R", "L")


READS_WORKLOADS = ("W1", "W2", "W3")


def selection(only: str | None) -> list[str]:
    every = [*FAMILIES, *CLASSICS, "K", "W"]
    if not only:
        return every
    keys = {k.strip().upper() for k in only.split(",") if k.strip()}
    unknown = keys - set(every) - set(READS_WORKLOADS)
    if unknown:
        raise SystemExit(
            f"unknown workload(s) {sorted(unknown)}; known: {[*every, *READS_WORKLOADS]}"
        )
    if "D" in keys:
        keys.add("D1")
    if keys & set(READS_WORKLOADS):
        keys.add("W")
    return [k for k in every if k in keys]


def reads_selection(only: str | None) -> list[str]:
    """The W workloads picked: all with ``W`` or no ``--only``, else those named."""
    keys = {k.strip().upper() for k in (only or "W").split(",")}
    return [w for w in READS_WORKLOADS if "W" in keys or w in keys]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="comma-separated workloads (default: all)")
    parser.add_argument(
        "--sizes", default="1000,20000,100000", help="stream counts of S (default: %(default)s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of A to Q each (medians; default 1)"
    )
    parser.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md")
    parser.add_argument(
        "--moto-searched-streams",
        action="store_true",
        help="keep moto's FilterLogEvents searchedLogStreams (one entry per stream of the "
        "group); by default the benchmark's moto answers an empty list, as AWS has since 2020",
    )
    parser.add_argument(
        "--collector-src",
        help="run the collector from this source folder (on PYTHONPATH) instead of the "
        "installed one, e.g. an older commit's src/ from `git archive`",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated stream counts")
    opts = Options(sizes, args.repeat, args.collector_src)
    compile_collector(opts.collector_src)
    if args.moto_searched_streams:
        MotoHost.arguments = ["--moto-searched-streams"]
    keys = selection(args.only)
    changes: list[Row] = []
    regions: RegionsResult | None = None
    lookbacks: list[LookbackResult] = []
    classics: dict[str, ClassicResult] = {}
    pushes: list[PathRun] = []
    reads: list[ReadsResult] = []
    picked = reads_selection(args.only)
    kept: dict[str, Env] = {}
    try:
        for key in keys:
            if key == "K":
                pushes = measure_paths()
                progress("K: " + "; ".join(
                    f"{r.path} x{r.processes}: {r.events_per_second:,.0f} events/s, "
                    f"{r.cpu_ms_per_1000:.1f} ms CPU per 1,000, {r.lost} lost, "
                    f"{r.repeated} repeated" for r in pushes
                ))  # fmt: skip
            elif key == "S":
                for size in sizes:
                    changes += streams_workload(size, opts)
            elif key == "G":
                changes += groups_workload(opts)
            elif key == "R":
                regions = regions_workload(opts)
            elif key == "L":
                lookbacks = [lookback_workload(lb, opts) for lb in ("15m", "0")]
            elif key == "W":
                for row in W_ROWS:
                    if row[0] in picked:
                        reads.append(reads_workload(*row, opts))
                        r = reads[-1]
                        progress(
                            f"{w_key(*row[:3])}: {r.per_event:.2f} reads per event sent, "
                            f"{r.lost} lost, {r.repeated} repeated, {r.wall:.0f} s"
                        )
            else:
                result, env = run_classic(CLASSICS[key], opts, kept)
                classics[key] = result
                if any(w.after == key for w in CLASSICS.values() if w.key in keys):
                    kept[key] = env
                else:
                    env.close()
    finally:
        for env in kept.values():
            env.close()
    command = (
        'make bench ARGS="--write'
        + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]) if a != "--write")
        + '"'
    )
    polled = [k for k in keys if k not in ("K", "W")]
    text = ""
    if polled:
        text = document(
            opts=opts, changes=changes, regions=regions, lookbacks=lookbacks,
            classics=classics, command=command,
        )  # fmt: skip
        print(text, flush=True)
    push_text = push_section(pushes, 'make bench ARGS="--only K --write"') if pushes else ""
    print(push_text, flush=True)
    reads_only = "W" if picked == list(READS_WORKLOADS) else ",".join(picked)
    reads_text = (
        reads_section(reads, f'make bench ARGS="--only {reads_only} --write"') if reads else ""
    )
    print(reads_text, flush=True)
    progress(f"done in {time.monotonic() - STARTED_AT:.0f} s")
    if args.write:
        if polled:
            write_benchmarks(ROOT / "BENCHMARKS.md", text)
        if pushes:
            write_push(ROOT / "BENCHMARKS.md", push_text)
        if reads:
            write_push(ROOT / "BENCHMARKS.md", reads_text, READS_BEGIN, READS_END)
        progress(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


STARTED_AT = time.monotonic()
LOAD_AT_START = os.getloadavg()[0]

if __name__ == "__main__":
    sys.exit(main())
