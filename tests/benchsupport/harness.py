"""The benchmark's harness: moto in its own process (filled directly), the counting proxy
before it, a bound queue socket, the collector run as a real process and measured, and the
clocks the collector sees (its host's, through libfaketime; AWS's, the proxy's ``Date``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import boto3

from awsproxy import AwsProxy
from benchsupport.flows import seq_of
from conftest import BASE_ENV, TEST_FLAGS, Sink, cli_env, service_xml, write_config

TESTS = Path(__file__).resolve().parent.parent
HEADER = b"1:Wazuh-AWS:"
# CloudWatch Logs' request quotas per account and region (requests per second), the
# archived table's figures. Quota-seconds are calls / quota summed over these; other calls
# (STS, DeleteLogStream) cost none here.
QUOTAS: dict[str, float] = {
    "GetLogEvents": 10.0,
    "FilterLogEvents": 5.0,
    "DescribeLogStreams": 5.0,
    "DescribeLogGroups": 5.0,
}
READS = ("GetLogEvents", "FilterLogEvents")
PAGE_EVENTS = 10_000
STS = "GetCallerIdentity"
# After the collector exits, what it sent is already queued in the socket: stop waiting once
# nothing more arrived for this long, or for the short while once everything expected has.
QUIET_SECONDS = 0.6
SHORT_QUIET_SECONDS = 0.15
SETTLE_TIMEOUT = 60.0
STARTED = time.monotonic()


def progress(text: str) -> None:
    """One progress line on stderr, stamped with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------------------ moto


class MotoHost:
    """``benchsupport.motohost`` as a child process: moto's server, and a pipe to fill it."""

    # Arguments of every host: ["--moto-searched-streams"] keeps moto's searchedLogStreams.
    arguments: ClassVar[list[str]] = []

    def __init__(self, log: Path) -> None:
        env = dict(os.environ, **BASE_ENV)
        env["PYTHONPATH"] = str(TESTS)
        # botocore knows regions that moto does not; without this moto answers them HTTP 500.
        env["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchsupport.motohost", *self.arguments],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lock = threading.Lock()
        first = self._read()
        self.port = int(first["port"])
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the moto host exited; see its log")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"moto host: {answer['error']}")
        return answer

    def command(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            return self._read()

    def fill(
        self,
        region: str,
        group: str,
        names: Sequence[str],
        *,
        per_stream: int,
        seq: int,
        ts: int = 0,
        ts_stream: int = 0,
        ts_event: int = 1,
        ingest_delay: int = 1000,
    ) -> int:
        """Streams ``names`` with ``per_stream`` events each; see ``motohost.fill``."""
        answer = self.command(
            cmd="fill", region=region, group=group, names=list(names), per_stream=per_stream,
            seq=seq, ts=ts, ts_stream=ts_stream, ts_event=ts_event, ingest_delay=ingest_delay,
        )  # fmt: skip
        return int(answer["put"])

    def put(self, region: str, group: str, events: list[tuple[str, int, int, int]]) -> int:
        """Events ``(stream, seq, timestamp, ingestion time)``, in ingestion order."""
        return int(self.command(cmd="put", region=region, group=group, events=events)["put"])

    def group(self, region: str, group: str) -> None:
        self.command(cmd="group", region=region, group=group)

    def trim(self, region: str, group: str, before: int) -> int:
        """Drop the group's events stamped before ``before`` (ms); how many were dropped."""
        return int(self.command(cmd="trim", region=region, group=group, before=before)["dropped"])

    def trim_misses(self) -> int:
        """FilterLogEvents calls that asked for event times ``trim`` had dropped (or for all
        times) over a trimmed group: each would have been answered short."""
        return int(self.command(cmd="trim_misses")["misses"])

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Requests moto answered and events its answers held, by "operation region"."""
        answer = self.command(cmd="counts")
        return Counter(answer["calls"]), Counter(answer["events"])

    def client(self, service: str = "logs", region: str = "us-east-1") -> Any:
        make: Any = boto3.client  # the stubs type it by literal service names only
        return make(
            service, region_name=region, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# ---------------------------------------------------------------------------- clocks


def faketime_library() -> str:
    """libfaketime's path (``apt-get install -y faketime``)."""
    for candidate in (
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ):
        if os.path.exists(candidate):
            return candidate
    wrapper = shutil.which("faketime")
    if wrapper:
        with contextlib.suppress(OSError):
            for raw in Path(wrapper).read_text(errors="replace").split():
                word = raw.strip("'\"=;")
                if word.endswith("libfaketime.so.1") and os.path.exists(word):
                    return word
    raise SystemExit("libfaketime not found: apt-get install -y faketime")


# CPython 3.11's time.sleep waits with an absolute clock_nanosleep on the monotonic clock,
# which libfaketime breaks (EINVAL) when the monotonic clock is left real; the collector
# under libfaketime gets this sleep instead, waiting on select. Test-only.
SITECUSTOMIZE = '''\
"""Test-only: time.sleep through select, for a process under libfaketime."""
import select
import time

_monotonic = time.monotonic


def _sleep(seconds):
    end = _monotonic() + max(0.0, float(seconds))
    while True:
        left = end - _monotonic()
        if left <= 0:
            return
        select.select([], [], [], left)


time.sleep = _sleep
'''


class HostClock:
    """The collector's host clock: real, or shifted by libfaketime (wall clock only; the
    monotonic clock stays real, so timeouts and waits keep their length)."""

    def __init__(self, folder: Path) -> None:
        self.site = folder / "faketime-site"
        self.site.mkdir(exist_ok=True)
        (self.site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def fixed(self, offset: float) -> dict[str, str]:
        """Environment for a process whose wall clock runs ``offset`` seconds ahead."""
        return {
            "LD_PRELOAD": faketime_library(),
            "FAKETIME": f"{offset:+.0f}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "PYTHONPATH": str(self.site),
        }

    def movable(self, spec: Path) -> dict[str, str]:
        """Environment for a process whose wall-clock offset is read from ``spec`` on every
        call, so that the benchmark can move it while the process runs."""
        return {
            "LD_PRELOAD": faketime_library(),
            "FAKETIME_TIMESTAMP_FILE": str(spec),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "PYTHONPATH": str(self.site),
        }


def write_spec(spec: Path, offset: float) -> None:
    """Move a ``movable`` clock: write its offset file in one step."""
    tmp = spec.with_suffix(".tmp")
    tmp.write_text(f"{offset:+.0f}\n")
    os.replace(tmp, spec)


class AwsClock:
    """AWS's clock as the collector sees it: the ``Date`` header of the proxy's answers (the
    proxy's own clock, through ``BaseHTTPRequestHandler.date_time_string``), here shifted by
    ``offset`` seconds so that AWS's clock can move with the host's."""

    def __init__(self, proxy: AwsProxy) -> None:
        self.offset = 0.0
        clock = self

        def date_time_string(_handler: Any, timestamp: float | None = None) -> str:
            when = time.time() if timestamp is None else timestamp
            return email.utils.formatdate(when + clock.offset, usegmt=True)

        handler: Any = proxy.server.RequestHandlerClass
        handler.date_time_string = date_time_string


# ------------------------------------------------------------------------- processes

# A child's ru_maxrss starts at its parent's high-water mark (Linux records the old memory's
# peak at exec), so a collector spawned by this large process would report this process's
# peak. It is spawned by this small launcher instead, which reports the collector's own
# wait4 rusage, wall time and exit code as JSON in the file named by its first argument. The
# collector's environment comes from a file, so that libfaketime touches only the collector.
LAUNCHER = """\
import json, os, signal, subprocess, sys, threading, time
out, timeout, env_file, pid_file, command = (
    sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:])
with open(env_file) as f:
    env = json.load(f)
started = time.monotonic()
proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(proc.pid))
os.replace(pid_file + ".tmp", pid_file)
timer = threading.Timer(timeout, os.kill, (proc.pid, signal.SIGKILL))
timer.daemon = True
timer.start()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.monotonic() - started
timer.cancel()
with open(out, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "wall": wall,
               "maxrss": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, f)
"""


@dataclass
class Measured:
    """One process: exit code, wall and CPU seconds (user + system), peak RSS in KiB."""

    code: int
    wall: float
    cpu: float
    peak_kib: int

    @property
    def peak_mb(self) -> float:
        return self.peak_kib / 1024


class Launched:
    """A measured process started through the launcher."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, timeout: float) -> None:
        self.report = log.with_suffix(f".{time.monotonic_ns()}.json")
        self.pid_file = self.report.with_suffix(".pid")
        env_file = self.report.with_suffix(".env")
        env_file.write_text(json.dumps(env))
        self.timeout = timeout
        self._out = log.open("ab")
        self.launcher = subprocess.Popen(
            [sys.executable, "-I", "-c", LAUNCHER, str(self.report), str(timeout),
             str(env_file), str(self.pid_file), *command],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out,
            start_new_session=True,
        )  # fmt: skip

    def pid(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(self.pid_file.read_text())
            time.sleep(0.01)
        raise RuntimeError("the collector did not start")

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid(), signum)

    def wait(self) -> Measured:
        try:
            self.launcher.wait(timeout=self.timeout + 60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.launcher.pid, signal.SIGKILL)
            self.launcher.wait()
        self._out.close()
        try:
            result: dict[str, Any] = json.loads(self.report.read_text())
        except (OSError, ValueError):
            return Measured(-1, self.timeout, 0.0, 0)
        return Measured(
            int(result["code"]), float(result["wall"]), float(result["cpu"]),
            int(result["maxrss"]),
        )  # fmt: skip


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- what arrived


class QuickSink(Sink):
    """The tests' Sink, reading into 64 KiB buffers: its 1 MiB reads allocate (and shrink)
    1 MiB per datagram, which capped it near 80,000 datagrams/s on this machine. The manager
    takes at most 65,535 bytes a datagram anyway."""

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


def decode(datagrams: Iterable[bytes]) -> list[int]:
    """The sequence numbers of datagrams' messages."""
    out = []
    for data in datagrams:
        if not data.startswith(HEADER):
            raise ValueError(f"datagram without the header: {data[:40]!r}")
        out.append(seq_of(data[len(HEADER) :].decode("utf-8")))
    return out


class Ledger:
    """Which sequence numbers were put into moto, and how often each arrived."""

    def __init__(self) -> None:
        self.put_marks = bytearray()
        self.got = bytearray()
        self.puts = 0
        self.delivered = 0  # distinct put events received
        self.unknown = 0  # received, never put

    def _grow(self, upto: int) -> None:
        if upto >= len(self.put_marks):
            extra = upto + 1 - len(self.put_marks) + 65536
            self.put_marks.extend(bytes(extra))
            self.got.extend(bytes(extra))

    def add(self, seqs: Iterable[int]) -> None:
        for s in seqs:
            self._grow(s)
            if not self.put_marks[s]:
                self.put_marks[s] = 1
                self.puts += 1
                if self.got[s]:
                    self.delivered += 1

    def receive(self, seqs: Iterable[int]) -> tuple[int, int]:
        """Count arrivals; returns (new distinct events, repeated arrivals)."""
        new = repeated = 0
        for s in seqs:
            self._grow(s)
            if self.got[s]:
                repeated += 1
            else:
                new += 1
                if self.put_marks[s]:
                    self.delivered += 1
                else:
                    self.unknown += 1
            if self.got[s] < 255:
                self.got[s] += 1
        return new, repeated

    @property
    def pending(self) -> int:
        return self.puts - self.delivered

    def missing(self, seqs: Iterable[int]) -> int:
        """How many of ``seqs`` never arrived."""
        return sum(1 for s in seqs if s >= len(self.got) or not self.got[s])

    def fork(self) -> Ledger:
        """The same puts, nothing received: for a second reader of the same data."""
        other = Ledger()
        other.put_marks = bytearray(self.put_marks)
        other.got = bytearray(len(self.put_marks))
        other.puts = self.puts
        return other


def settle(sink: Sink, count: int) -> None:
    """Wait until the sink has read what the collector queued: ``count`` datagrams and a short
    silence (so that any extra, repeated ones are counted too), or a longer silence."""
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


# ------------------------------------------------------------------------ a collection


def by_operation(keyed: Counter[str]) -> Counter[str]:
    """Counts keyed "operation region" summed by operation."""
    out: Counter[str] = Counter()
    for key, n in keyed.items():
        out[key.split(" ", 1)[0]] += n
    return +out


def by_region(keyed: Counter[str]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for key, n in keyed.items():
        operation, _, region = key.partition(" ")
        out.setdefault(region, Counter())[operation] += n
    return out


def quota_seconds(calls: Counter[str]) -> float:
    """Seconds of CloudWatch Logs quota the calls use up (calls / quota, summed)."""
    return sum(calls[op] / rate for op, rate in QUOTAS.items())


@dataclass
class Cycle:
    """One collection (one ``run --once`` process, or one cycle of a daemon)."""

    label: str
    measured: Measured | None  # None for a daemon's cycle
    calls: Counter[str]  # by operation, as the proxy counted them (faults included)
    moto_calls: Counter[str]  # by "operation region", answered by moto
    read: Counter[str]  # events in moto's answers, by "operation region"
    received: int  # datagrams
    new: int  # distinct events not received before
    repeated: int
    pending: int  # put and never received, after this cycle
    throttled: int = 0
    moto_cpu: float = 0.0
    harness_cpu: float = 0.0
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def logs_calls(self) -> int:
        """CloudWatch Logs calls (all but STS)."""
        return sum(n for op, n in self.calls.items() if op != STS)

    @property
    def events_read(self) -> int:
        return sum(self.read.values())

    @property
    def pages(self) -> int:
        return sum(self.calls[op] for op in READS)

    @property
    def quota_s(self) -> float:
        return quota_seconds(self.calls)

    @property
    def busiest_region_quota_s(self) -> float:
        """The quota-seconds of the region that used most: the shortest interval at which
        this cycle, repeated, keeps within the quotas (each region has its own)."""
        regions = by_region(self.moto_calls)
        if len(regions) <= 1:
            return self.quota_s
        return max(quota_seconds(c) for c in regions.values())


@dataclass
class Env:
    """A moto host, the proxy before it, a bound sink, an ossec.conf and a state file."""

    name: str
    folder: Path
    host: MotoHost
    proxy: AwsProxy
    aws_clock: AwsClock
    host_clock: HostClock
    sink: QuickSink
    config: Path
    state: Path
    collector_src: str | None = None
    ledger: Ledger = field(default_factory=Ledger)
    next_seq: int = 0
    serial: int = 0
    last_received: list[int] = field(default_factory=list)  # seqs of the last collection

    @classmethod
    def create(
        cls,
        name: str,
        groups: Sequence[str],
        regions: str = "us-east-1",
        *,
        quotas: dict[str, float] | None = None,
        interval: str = "5m",
        collector_src: str | None = None,
    ) -> Env:
        folder = Path(tempfile.mkdtemp(prefix=f"awb-{name}-"))
        host = MotoHost(folder / "moto.log")
        proxy = AwsProxy(host.url, quotas=quotas)
        sink = QuickSink(str(folder / "queue"))
        sink.bind()
        only_after = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
        service = service_xml(proxy.url, ",".join(groups), regions, only_logs_after=only_after)
        config = write_config(folder, service, interval=interval)
        return cls(
            name, folder, host, proxy, AwsClock(proxy), HostClock(folder), sink, config,
            folder / "state.db", collector_src,
        )  # fmt: skip

    def seqs(self, n: int) -> range:
        """``n`` fresh sequence numbers."""
        out = range(self.next_seq, self.next_seq + n)
        self.next_seq += n
        return out

    def fill(
        self, region: str, group: str, names: Sequence[str], per_stream: int, **kw: Any
    ) -> range:
        """Put ``per_stream`` events into each stream (created when new); see MotoHost.fill."""
        seqs = self.seqs(len(names) * per_stream)
        self.host.fill(region, group, names, per_stream=per_stream, seq=seqs.start, **kw)
        self.ledger.add(seqs)
        return seqs

    def put(self, region: str, group: str, events: list[tuple[str, int, int]]) -> range:
        """Events ``(stream, timestamp, ingestion time)``; returns their sequence numbers."""
        seqs = self.seqs(len(events))
        rows = [(s, n, ts, ing) for n, (s, ts, ing) in zip(seqs, events, strict=True)]
        self.host.put(region, group, rows)
        self.ledger.add(seqs)
        return seqs

    def fresh_state(self) -> None:
        """An empty state file, and nothing received on it: the next collection is a first."""
        self.serial += 1
        self.state = self.folder / f"state-{self.serial}.db"
        self.ledger = self.ledger.fork()

    def collector_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """cli_env with ``extra``; PYTHONPATH joins extra's and the collector source's (when
        the benchmark runs another copy of the collector than the installed one, or was run
        with a PYTHONPATH of its own: libfaketime's ``extra`` would otherwise drop it)."""
        extra = dict(extra or {})
        # The collector named, else the one this benchmark was pointed at (PYTHONPATH).
        own = self.collector_src or os.environ.get("PYTHONPATH")
        paths = [p for p in (extra.pop("PYTHONPATH", None), own) if p]
        env = cli_env(**extra)
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def command(self, *extra: str, once: bool = True) -> list[str]:
        return [
            sys.executable, "-m", "aws_wodle", "run", *(["--once"] if once else []),
            "--config", str(self.config), "--queue", self.sink.path, "--state", str(self.state),
            *TEST_FLAGS, *extra,
        ]  # fmt: skip

    def snapshot(self) -> tuple[Counter[str], Counter[str], Counter[str], int]:
        with self.proxy.stats.lock:
            calls = Counter(self.proxy.stats.calls)
            throttled = self.proxy.stats.faults["throttle"]
        moto_calls, read = self.host.counts()
        return calls, moto_calls, read, throttled

    def since(
        self, before: tuple[Counter[str], Counter[str], Counter[str], int]
    ) -> tuple[Counter[str], Counter[str], Counter[str], int]:
        after = self.snapshot()
        out: list[Any] = []
        for a, b in zip(after[:3], before[:3], strict=True):
            diff = Counter(a)
            diff.subtract(b)
            out.append(+diff)
        return out[0], out[1], out[2], after[3] - before[3]

    def take_received(self) -> tuple[int, int, int]:
        """Datagrams the sink holds (then cleared): (count, new, repeated)."""
        got = list(self.sink.received)
        self.sink.received.clear()
        self.last_received = decode(got)
        new, repeated = self.ledger.receive(self.last_received)
        return len(got), new, repeated

    def once(
        self,
        label: str,
        *extra: str,
        host_offset: float = 0.0,
        aws_offset: float = 0.0,
        timeout: float = 900.0,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Cycle:
        """One collection by a real ``aws-wodle run --once`` process (or ``command``, with
        ``env`` added to its environment), with the host's and AWS's clocks moved by these
        offsets (seconds)."""
        self.sink.received.clear()
        self.aws_clock.offset = aws_offset
        before = self.snapshot()
        moto_before, own_before = cpu_of(self.host.proc.pid), time.process_time()
        added = dict(env or {})
        if host_offset:
            added.update(self.host_clock.fixed(host_offset))
        launched = Launched(
            command or self.command(*extra), self.collector_env(added),
            self.folder / "collector.log", timeout,
        )  # fmt: skip
        measured = launched.wait()
        moto_cpu = cpu_of(self.host.proc.pid) - moto_before
        own_cpu = time.process_time() - own_before
        settle(self.sink, self.ledger.pending)
        calls, moto_calls, read, throttled = self.since(before)
        self.aws_clock.offset = 0.0
        received, new, repeated = self.take_received()
        cycle = Cycle(
            label, measured, calls, moto_calls, read, received, new, repeated,
            self.ledger.pending, throttled, moto_cpu, own_cpu,
        )  # fmt: skip
        progress(
            f"{self.name}: {label}: exit {measured.code}, {measured.wall:.1f} s, "
            f"{cycle.total:,} calls ({show_calls(calls)}), {new:,} new events, "
            f"{repeated:,} repeated, {cycle.events_read:,} read, {cycle.pending:,} pending; "
            f"CPU s: collector {measured.cpu:.1f}, moto {moto_cpu:.1f}, proxy and sink "
            f"{own_cpu:.1f}; peak {measured.peak_mb:.0f} MB"
        )
        if measured.code != 0:
            tail = (self.folder / "collector.log").read_text(errors="replace").splitlines()
            for line in tail[-4:]:
                progress(f"{self.name}:   {line[:240]}")
        return cycle

    def close(self) -> None:
        self.proxy.stop()
        self.sink.unbind()
        self.host.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def show_calls(calls: Counter[str]) -> str:
    """Calls by operation, most first."""
    if not calls:
        return "none"
    return ", ".join(
        f"{op} {n:,}" for op, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
    )


# ---------------------------------------------------------------------------- daemon


class Notifications:
    """A bound datagram socket standing in for systemd's notify socket: the daemon sends
    ``STATUS=last cycle ...`` after each cycle, which tells the benchmark a cycle ended."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.put(data.decode("utf-8", "replace"))

    def wait_cycle(self, timeout: float) -> str:
        """The next end-of-cycle status line."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no cycle ended in time")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            for line in message.splitlines():
                if line.startswith("STATUS=last cycle"):
                    return line.removeprefix("STATUS=")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class RunningDaemon:
    """``aws-wodle run`` (the daemon) under a clock the benchmark moves: libfaketime reads
    the host clock's offset from a file on every call, and the proxy's ``Date`` moves with
    it. A systemd-like watchdog period makes the daemon look at the clock every second."""

    def __init__(self, env: Env, *extra: str, timeout: float = 1800.0) -> None:
        self.env = env
        self.spec = env.folder / "faketime.rc"
        self.offset = 0.0
        write_spec(self.spec, 0)
        env.aws_clock.offset = 0.0
        self.notify = Notifications(str(env.folder / "notify"))
        child = env.host_clock.movable(self.spec)
        child.update(NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC="2000000")
        self.before = env.snapshot()
        self.launched = Launched(
            env.command(*extra, once=False), env.collector_env(child),
            env.folder / "daemon.log", timeout,
        )  # fmt: skip

    def move(self, seconds: float) -> None:
        """Move both clocks forward: the next cycle falls due at once."""
        self.offset += seconds
        write_spec(self.spec, self.offset)
        self.env.aws_clock.offset = self.offset

    def cycle(self, label: str, timeout: float = 300.0) -> Cycle:
        """Wait for the end of the next cycle; what it cost."""
        status = self.notify.wait_cycle(timeout)
        settle(self.env.sink, self.env.ledger.pending)
        calls, moto_calls, read, throttled = self.env.since(self.before)
        self.before = self.env.snapshot()
        received, new, repeated = self.env.take_received()
        cycle = Cycle(
            label, None, calls, moto_calls, read, received, new, repeated,
            self.env.ledger.pending, throttled, note=status,
        )  # fmt: skip
        progress(f"{self.env.name}: {label}: {cycle.total:,} calls ({show_calls(calls)}); {status}")
        return cycle

    def stop(self) -> Measured:
        self.launched.signal(signal.SIGTERM)
        measured = self.launched.wait()
        self.notify.close()
        self.env.aws_clock.offset = 0.0
        return measured
