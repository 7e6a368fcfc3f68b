"""The benchmark of the issue's workloads: a real collector process against moto, behind a
proxy of ours that counts (and for workload Q rate-limits) every call.

Run ``python tests/bench.py [--only A,B,...] [--repeat N] [--write]`` (or ``make bench``):
it prints one table, and with ``--write`` rewrites BENCHMARKS.md at the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import moto

from awsproxy import AwsProxy
from conftest import ROOT, MotoServer, Sink, cli_env, put, service_xml, write_config

# CloudWatch Logs' request quotas per account and region (requests per second). Quota-seconds
# are calls / quota summed over these; other calls (STS, DeleteLogStream) cost none here.
QUOTAS: dict[str, float] = {
    "GetLogEvents": 10.0,
    "FilterLogEvents": 5.0,
    "DescribeLogStreams": 5.0,
    "DescribeLogGroups": 5.0,
}
# The calls that read events; a run with nothing new should make none of them.
READS = ("GetLogEvents", "FilterLogEvents")
# Both event-reading calls return at most this many events a page.
PAGE_EVENTS = 10_000
HEADER = b"1:Wazuh-AWS:"
ACCOUNT = "123456789012"
# Collector processes of Q run at most this many times before its loss is counted as final.
MAX_RUNS = 5
# After the collector exits, what it sent is already queued in the socket: stop waiting once
# nothing more arrived for this long, or for the short while once everything expected has.
QUIET_SECONDS = 1.0
SHORT_QUIET_SECONDS = 0.2
SETTLE_TIMEOUT = 60.0
STARTED = time.monotonic()


def progress(text: str) -> None:
    """One progress line on stderr, stamped with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


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
        """Events seeded in all."""
        return len(self.regions) * self.groups * self.busy * self.events


@dataclass(frozen=True)
class Workload:
    """One row of the table: a shape, how it is collected, and what the issue asks of it."""

    key: str
    what: str
    shape: Shape
    enforce: bool = False  # the proxy answers ThrottlingException beyond QUOTAS
    after: str | None = None  # runs on the state left by this workload (B after A)
    until_delivered: bool = False  # re-run the collector until every event arrived
    timeout: float = 900.0  # seconds one collector process may take before it is killed


ONE_REGION = ("us-east-1",)
THREE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
A_SHAPE = Shape(ONE_REGION, groups=1, streams=500, busy=500, events=20)
D_SHAPE = Shape(THREE_REGIONS, groups=4, streams=50, busy=10, events=200)
WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("A", "1 group, 500 streams x 20 events, first collection", A_SHAPE),
        Workload("B", "A again with nothing new (same state)", A_SHAPE, after="A"),
        Workload("C", "1 group, 5 streams x 50,000 events", Shape(ONE_REGION, 1, 5, 5, 50_000)),
        Workload(
            "D1",
            "1 region x 4 groups x 50 streams (10 with 200 events each)",
            Shape(ONE_REGION, 4, 50, 10, 200),
        ),
        Workload("D", "3 regions x 4 groups x 50 streams (10 with 200 events each)", D_SHAPE),
        Workload("E", "1 stream x 1,000,000 events", Shape(ONE_REGION, 1, 1, 1, 1_000_000)),
        Workload(
            "Q",
            "1 group, 5,000 streams x 20 events, quotas enforced by the proxy",
            Shape(ONE_REGION, 1, 5_000, 5_000, 20),
            enforce=True,
            until_delivered=True,
            timeout=1800.0,
        ),
    )
}


# ---------------------------------------------------------------------------- seeding


def flow_line(seq: int, timestamp: int) -> str:
    """A VPC flow log record, distinct for each ``seq``, as CloudWatch Logs receives them."""
    mix = (seq * 2654435761) & 0xFFFFFFFF
    start = timestamp // 1000
    action = "REJECT" if mix % 7 == 0 else "ACCEPT"
    return (
        f"2 {ACCOUNT} eni-{seq:017x} 10.{mix >> 24}.{(mix >> 16) & 255}.{(mix >> 8) & 255} "
        f"172.31.{mix & 255}.{(mix >> 4) & 255} {1024 + mix % 64000} 443 6 {1 + mix % 90} "
        f"{60 + mix % 90_000} {start} {start + 60} {action} OK"
    )


def group_name(index: int) -> str:
    return f"/aws/vpc/flow-logs-{index:02d}"


def stream_name(index: int) -> str:
    return f"eni-{index:05d}-all"


def seed(server: MotoServer, shape: Shape, first: int) -> set[str]:
    """Create the shape's groups and streams in moto (directly, not through the proxy) and
    put distinct messages, 1 ms apart from ``first``; returns every message put."""
    jobs: list[tuple[Any, str, str, list[str]]] = []
    messages: set[str] = set()
    seq = 0
    for region in shape.regions:
        logs = server.client("logs", region)
        for g in range(shape.groups):
            logs.create_log_group(logGroupName=group_name(g))
            for s in range(shape.streams):
                count = shape.events if s < shape.busy else 0
                batch = [flow_line(seq + i, first + i) for i in range(count)]
                seq += count
                messages.update(batch)
                jobs.append((logs, group_name(g), stream_name(s), batch))
    if len(messages) != seq:
        raise RuntimeError("seeded messages are not distinct")

    def create(job: tuple[Any, str, str, list[str]]) -> None:
        logs, group, stream, batch = job
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if batch:
            put(logs, group, stream, batch, first)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, jobs))
    return messages


# ------------------------------------------------------------------------- environment


@dataclass
class Env:
    """A seeded moto server, the proxy before it, a bound sink, a config and a state file."""

    folder: Path
    server: MotoServer
    proxy: AwsProxy
    sink: Sink
    config: Path
    messages: set[str]
    state: Path
    seen: set[str] = field(default_factory=set)  # delivered so far on this state
    serial: int = 0

    def fresh_state(self) -> None:
        """Start over with an empty state file: the next collection is a first one."""
        self.serial += 1
        self.state = self.folder / f"state-{self.serial}.db"
        self.seen = set()

    def close(self) -> None:
        self.proxy.stop()
        self.sink.unbind()
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class QuickSink(Sink):
    """The tests' Sink, reading into 64 KiB buffers: its 1 MiB reads allocate (and shrink)
    1 MiB per datagram, which capped it near 80,000 datagrams/s on this machine, close to
    the collector's target. The manager takes at most 65,535 bytes a datagram anyway."""

    def _loop(self) -> None:
        sock = self.sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                self.received.append(sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return


def build_env(workload: Workload) -> Env:
    """Start moto, seed it, put the proxy before it, bind a sink and write ossec.conf."""
    shape = workload.shape
    server = MotoServer()
    progress(
        f"{workload.key}: seeding {shape.total:,} events in "
        f"{len(shape.regions) * shape.groups * shape.streams:,} streams"
    )
    started = time.monotonic()
    # Within the last hour (1,000,000 events 1 ms apart span under 17 minutes).
    first = int(time.time() * 1000) - 50 * 60 * 1000
    try:
        messages = seed(server, shape, first)
    except BaseException:
        server.stop()
        raise
    progress(f"{workload.key}: seeded in {time.monotonic() - started:.1f} s")
    proxy = AwsProxy(server.url, quotas=dict(QUOTAS) if workload.enforce else None)
    folder = Path(tempfile.mkdtemp(prefix="awb"))
    sink = QuickSink(str(folder / "queue"))
    sink.bind()
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    groups = ",".join(group_name(g) for g in range(shape.groups))
    service = service_xml(proxy.url, groups, ",".join(shape.regions), only_logs_after=yesterday)
    config = write_config(folder, service)
    return Env(folder, server, proxy, sink, config, messages, folder / "state-0.db")


# ---------------------------------------------------------------------------- running


@dataclass
class Attempt:
    """One collector process: its exit code and cost, and the messages the sink got from it."""

    code: int
    wall: float
    cpu: float
    peak_kib: int
    calls: Counter[str]
    throttled: int
    received: list[str]
    moto_cpu: float  # moto's CPU seconds meanwhile
    harness_cpu: float  # this process's (proxy and sink) CPU seconds meanwhile


def decode(datagrams: Iterable[bytes]) -> list[str]:
    """The messages of datagrams, without the header."""
    out = []
    for data in datagrams:
        if not data.startswith(HEADER):
            raise ValueError(f"datagram without the header: {data[:40]!r}")
        out.append(data[len(HEADER) :].decode("utf-8"))
    return out


def settle(sink: Sink, count: int) -> None:
    """Wait until the sink has read what the (exited) collector queued: ``count`` datagrams
    and then a short silence (so that any extra, repeated ones are counted too), or a long
    silence, or a timeout."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, quiet_since = len(sink.received), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = len(sink.received)
        if now != last:
            last, quiet_since = now, time.monotonic()
            continue
        quiet = time.monotonic() - quiet_since
        if quiet > QUIET_SECONDS or (now >= count and quiet > SHORT_QUIET_SECONDS):
            return


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# A child's ru_maxrss starts at its parent's high-water mark (Linux records the old memory's
# peak at exec), so a collector spawned by this large process would report this process's
# peak. It is spawned by this small launcher instead, which reports the collector's own
# wait4 rusage, wall time and exit code as JSON in the file named by its first argument.
LAUNCHER = """\
import json, os, signal, subprocess, sys, threading, time
out, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
started = time.monotonic()
proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
timer = threading.Timer(timeout, os.kill, (proc.pid, signal.SIGKILL))
timer.start()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.monotonic() - started
timer.cancel()
proc.returncode = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    json.dump({"code": proc.returncode, "wall": wall, "maxrss": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, f)
"""


def spawn_measured(command: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run ``command`` through the launcher; its exit code, wall and CPU seconds, and peak
    RSS in KiB (``os.wait4`` of the collector itself)."""
    report = log.with_suffix(".json")
    report.unlink(missing_ok=True)
    with log.open("ab") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-I", "-c", LAUNCHER, str(report), str(timeout), *command],
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        try:
            launcher.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    try:
        result: dict[str, Any] = json.loads(report.read_text())
    except (OSError, ValueError):
        return {"code": -1, "wall": float(timeout), "maxrss": 0, "cpu": 0.0}
    return result


def run_collector(env: Env, timeout: float) -> Attempt:
    """Run ``aws-wodle run --once`` as a real process; measure it and what it delivered."""
    env.sink.received.clear()
    moto_before, own_before = cpu_of(env.server.proc.pid), time.process_time()
    calls_before = Counter(env.proxy.stats.calls)
    throttled_before = env.proxy.stats.faults["throttle"]
    command = [
        sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(env.config),
        "--queue", env.sink.path, "--state", str(env.state),
    ]  # fmt: skip
    measured = spawn_measured(command, env.folder / "collector.log", timeout)
    moto_cpu = cpu_of(env.server.proc.pid) - moto_before
    own_cpu = time.process_time() - own_before
    settle(env.sink, len(env.messages - env.seen))
    calls = Counter(env.proxy.stats.calls)
    calls.subtract(calls_before)
    return Attempt(
        code=int(measured["code"]),
        wall=float(measured["wall"]),
        cpu=float(measured["cpu"]),
        peak_kib=int(measured["maxrss"]),
        calls=+calls,
        throttled=env.proxy.stats.faults["throttle"] - throttled_before,
        received=decode(list(env.sink.received)),
        moto_cpu=moto_cpu,
        harness_cpu=own_cpu,
    )


@dataclass
class Measurement:
    """One measured collection of a workload: one process, or several for Q."""

    attempts: list[Attempt]
    events: int  # distinct events delivered that had not been delivered before
    lost: int
    repeated: int

    @property
    def wall(self) -> float:
        return sum(a.wall for a in self.attempts)

    @property
    def cpu(self) -> float:
        return sum(a.cpu for a in self.attempts)

    @property
    def peak_mb(self) -> float:
        return max(a.peak_kib for a in self.attempts) / 1024

    @property
    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for a in self.attempts:
            total.update(a.calls)
        return total

    @property
    def throttled(self) -> int:
        return sum(a.throttled for a in self.attempts)

    @property
    def codes(self) -> list[int]:
        return [a.code for a in self.attempts]


def measure(env: Env, workload: Workload) -> Measurement:
    """Collect once (Q: until everything is delivered) and count what was lost or repeated.

    Expected are the events not yet delivered on this state; repeated are receptions beyond
    the first, including events already delivered by an earlier collection.
    """
    pending = env.messages - env.seen
    attempts: list[Attempt] = []
    received: list[str] = []
    while True:
        attempt = run_collector(env, workload.timeout)
        attempts.append(attempt)
        received.extend(attempt.received)
        missing = len(pending - set(received))
        progress(
            f"{workload.key}: collector run {len(attempts)} exited {attempt.code} after "
            f"{attempt.wall:.1f} s: {len(attempt.received):,} events, "
            f"{sum(attempt.calls.values()):,} calls, {missing:,} still missing; CPU s: "
            f"collector {attempt.cpu:.1f}, moto {attempt.moto_cpu:.1f}, "
            f"proxy and sink {attempt.harness_cpu:.1f}"
        )
        if attempt.code != 0:
            tail = (env.folder / "collector.log").read_text(errors="replace").splitlines()[-3:]
            for line in tail:
                progress(f"{workload.key}:   {line[:200]}")
        if not workload.until_delivered or missing == 0 or len(attempts) >= MAX_RUNS:
            break
    distinct = set(received)
    repeated = len(received) - len(distinct) + len(distinct & env.seen)
    env.seen |= distinct
    return Measurement(attempts, len(distinct & pending), len(pending - distinct), repeated)


# ---------------------------------------------------------------------------- results


@dataclass
class Result:
    """Every measured run of one workload."""

    workload: Workload
    runs: list[Measurement]

    def median(self, value: Callable[[Measurement], float]) -> float:
        return statistics.median(value(m) for m in self.runs)

    @property
    def first(self) -> Measurement:
        return self.runs[0]

    @property
    def wall(self) -> float:
        return self.median(lambda m: m.wall)

    @property
    def cpu(self) -> float:
        return self.median(lambda m: m.cpu)

    @property
    def peak_mb(self) -> float:
        return self.median(lambda m: m.peak_mb)

    @property
    def events(self) -> int:
        return self.first.events

    @property
    def events_per_s(self) -> float | None:
        if not self.events:
            return None
        return self.median(lambda m: m.events / m.wall if m.wall else 0.0)

    @property
    def cpu_ms_per_k(self) -> float | None:
        if not self.events:
            return None
        return self.median(lambda m: m.cpu * 1000 / (m.events / 1000) if m.events else 0.0)

    @property
    def lost(self) -> int:
        """The worst run's loss."""
        return max(m.lost for m in self.runs)

    @property
    def repeated(self) -> int:
        return max(m.repeated for m in self.runs)

    @property
    def calls(self) -> Counter[str]:
        return self.first.calls

    def calls_vary(self) -> bool:
        """Whether the calls differed between runs (they should be deterministic)."""
        return any(m.calls != self.first.calls for m in self.runs[1:])

    @property
    def quota_seconds(self) -> float:
        return quota_seconds(self.calls)


def quota_seconds(calls: Counter[str]) -> float:
    """Seconds of CloudWatch Logs quota the calls use up (calls / quota, summed)."""
    return sum(calls[op] / rate for op, rate in QUOTAS.items())


def reads(calls: Counter[str]) -> int:
    return sum(calls[op] for op in READS)


def show_calls(calls: Counter[str]) -> str:
    return ", ".join(f"{op} {n:,}" for op, n in sorted(calls.items(), key=lambda kv: -kv[1]))


def d_ratio(results: dict[str, Result]) -> float | None:
    """Median wall time of D over that of D1 (same shape, one region)."""
    if "D" not in results or "D1" not in results or not results["D1"].wall:
        return None
    return results["D"].wall / results["D1"].wall


def target(result: Result, results: dict[str, Result]) -> str:
    """Whether the issue's target for this workload is met, from the measured numbers."""
    key = result.workload.key
    calls = result.calls
    total = sum(calls.values())
    if result.lost or result.repeated:
        return f"no: {result.lost:,} lost, {result.repeated:,} repeated"
    if key == "A":
        return _verdict(total < 60, f"{total:,} calls (target < 60)")
    if key == "B":
        sent = result.first.events + result.repeated
        ok = reads(calls) == 0 and total <= 11 and sent == 0
        return _verdict(ok, f"{reads(calls):,} reads, {total:,} calls (target 0 reads, <= 11)")
    if key == "C":
        shape = result.workload.shape
        pages = len(shape.regions) * shape.groups * shape.busy * -(-shape.events // PAGE_EVENTS)
        rate, cpu = result.events_per_s or 0.0, result.cpu_ms_per_k or 0.0
        ok = reads(calls) <= pages and rate >= 60_000 and cpu <= 10
        return _verdict(
            ok,
            f"{reads(calls):,} reads (target <= {pages}), {rate:,.0f} events/s (>= 60,000), "
            f"{cpu:.1f} ms CPU per 1,000 (<= 10)",
        )
    if key == "D":
        ratio = d_ratio(results)
        if ratio is None:
            return "n/a: D1 not run"
        return _verdict(ratio <= 1.5, f"{ratio:.2f}x D1's wall time (target <= 1.5x)")
    if key == "E":
        return _verdict(result.peak_mb < 150, f"{result.peak_mb:.0f} MB peak (target < 150)")
    if key == "Q":
        return _verdict(True, "every event delivered")
    return "reference for D"


def _verdict(ok: bool, detail: str) -> str:
    return f"{'yes' if ok else 'no'}: {detail}"


COLUMNS = (
    "workload", "what", "calls by operation", "quota-s", "wall s (median)", "collector CPU s",
    "CPU ms per 1,000 events", "peak MB", "events/s", "lost", "repeated", "target met",
)  # fmt: skip


def row(result: Result, results: dict[str, Result]) -> list[str]:
    """One table row."""
    eps, cpk = result.events_per_s, result.cpu_ms_per_k
    return [
        result.workload.key,
        result.workload.what,
        show_calls(result.calls) + (" (varied between runs)" if result.calls_vary() else ""),
        f"{result.quota_seconds:,.1f}",
        f"{result.wall:.2f}",
        f"{result.cpu:.2f}",
        "-" if cpk is None else f"{cpk:.1f}",
        f"{result.peak_mb:.0f}",
        "-" if eps is None else f"{eps:,.0f}",
        f"{result.lost:,}",
        f"{result.repeated:,}",
        target(result, results),
    ]


def table(results: dict[str, Result]) -> str:
    """The results as one Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for result in results.values():
        lines.append("| " + " | ".join(row(result, results)) + " |")
    return "\n".join(lines)


def summary_lines(results: dict[str, Result]) -> list[str]:
    """The D vs D1 ratio, the Q line, and anything odd seen while running."""
    lines = []
    ratio = d_ratio(results)
    if ratio is not None:
        lines.append(
            f"- D vs D1: 3 regions took {results['D'].wall:.2f} s, the same shape in one "
            f"region {results['D1'].wall:.2f} s: {ratio:.2f}x (target <= 1.5x)."
        )
    if "Q" in results:
        q = results["Q"]
        runs = statistics.median(len(m.attempts) for m in q.runs)
        lines.append(
            f"- Q: every event of {q.workload.shape.total:,} delivered in {q.wall:.1f} s "
            f"(median) over {runs:g} collector run(s), {q.lost:,} lost, {q.repeated:,} "
            f"repeated; {q.first.throttled:,} of its {sum(q.calls.values()):,} calls were "
            f"answered ThrottlingException by the proxy (quotas enforced: "
            + ", ".join(f"{op} {rate:g}/s" for op, rate in QUOTAS.items())
            + ")."
        )
    for result in results.values():
        codes = sorted({c for m in result.runs for c in m.codes})
        if codes != [0]:
            lines.append(f"- {result.workload.key}: the collector exited with {codes}.")
        if result.calls_vary():
            varied = "; ".join(show_calls(m.calls) for m in result.runs)
            lines.append(f"- {result.workload.key}: calls varied between runs: {varied}.")
    return lines


OLD_MODULE = """\
For comparison, the old module's figures from the issue, and the targets:
A: 1,000 GetLogEvents + 20 DescribeLogStreams = 1,020 calls, 104 quota-s, 8.3 s; target
under 60 calls. B: 500 GetLogEvents + 20 DescribeLogStreams = 520 calls, 54 quota-s; target
no GetLogEvents/FilterLogEvents at all, 11 calls or fewer. C: 30 GetLogEvents, 24,000
events/s, 33 ms CPU per 1,000 events; target one read per 10,000-event page, 60,000 events/s
or more, 10 ms CPU per 1,000 events or less. D: the old module runs regions one after
another; target wall time within 1.5x of a single region's. E: 76 MB peak at 100,000
events; target under 150 MB (at 1,000,000 events here)."""

NOTES = """\
How it is measured: each workload seeds a fresh moto server directly, then runs
`python -m aws_wodle run --once` as a real process against an HTTP proxy of ours in front
of moto (`tests/awsproxy.py`), which counts the calls by operation; the collector sends
to a bound Unix datagram socket that counts what arrives. Wall time is the collector
process's; CPU and peak memory are its own (`wait4` rusage: user + system, max RSS). Every
seeded message is distinct: lost = seeded but never received, repeated = received more than
once (or again after an earlier run). Times are medians over the runs; calls come from the
first run; lost and repeated are the worst run's. moto serves about 85,000 events/s on one
core and sorts a whole stream on every GetLogEvents, and the proxy, the socket reader and
moto share this machine with the collector: events/s is a lower bound of the collector's
own speed."""


def machine() -> str:
    """nproc, CPU model, Python, boto3 and moto versions."""
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


def document(results: dict[str, Result], repeat: int) -> str:
    """The whole of BENCHMARKS.md."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks",
        'Repeat with `make bench ARGS="--write --repeat 3"` (the script is `tests/bench.py`; '
        "`--only A,B` picks workloads).",
        f"Measured {date} on {machine()}, {repeat} run(s) per workload.",
        table(results),
        "\n".join(summary_lines(results)),
        OLD_MODULE,
        NOTES,
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


# ---------------------------------------------------------------------------- main


def run_workload(workload: Workload, repeat: int, kept: dict[str, Env]) -> tuple[Result, Env]:
    """Measure a workload ``repeat`` times; returns its result and its (open) environment."""
    if workload.after is not None:
        env = kept.pop(workload.after, None)
        if env is None:
            env = build_env(workload)
            progress(f"{workload.key}: first collection, as {workload.after}, to make the state")
            measure(env, WORKLOADS[workload.after])
    else:
        env = build_env(workload)
    runs = []
    try:
        for index in range(repeat):
            if workload.after is None:
                env.fresh_state()
            progress(f"{workload.key}: run {index + 1} of {repeat}")
            runs.append(measure(env, workload))
    except BaseException:
        env.close()
        raise
    return Result(workload, runs), env


def selection(only: str | None) -> list[str]:
    """The workloads to run, in table order; D brings D1, its reference."""
    if not only:
        return list(WORKLOADS)
    keys = {k.strip().upper() for k in only.split(",") if k.strip()}
    unknown = keys - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workload(s) {sorted(unknown)}; known: {list(WORKLOADS)}")
    if "D" in keys:
        keys.add("D1")
    return [k for k in WORKLOADS if k in keys]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated workloads (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload (medians)")
    parser.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    keys = selection(args.only)
    results: dict[str, Result] = {}
    kept: dict[str, Env] = {}
    try:
        for key in keys:
            result, env = run_workload(WORKLOADS[key], args.repeat, kept)
            results[key] = result
            if any(w.after == key for w in WORKLOADS.values() if w.key in keys):
                kept[key] = env
            else:
                env.close()
    finally:
        for env in kept.values():
            env.close()
    print(table(results))
    for line in summary_lines(results):
        print(line)
    progress(f"done in {time.monotonic() - STARTED:.0f} s")
    if args.write:
        (ROOT / "BENCHMARKS.md").write_text(document(results, args.repeat))
        progress(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
