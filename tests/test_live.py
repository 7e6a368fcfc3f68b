"""Live runs through the AWS-like double: writers of every kind of stream, the daemon at a
10 s interval with default --lookback, --settle and --late-every, then a bounded drain; lost,
repeated and delivery latency per kind of stream (issue 8, issue 9's 5,000-stream group,
issue 20's reads split by lateness)."""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import glob
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from awsproxy import AwsLike, AwsProxy
from conftest import ROOT, MotoServer, Sink, cli_env, service_xml, write_config

pytestmark = pytest.mark.slow

INTERVAL = 10.0  # the wodle's <interval>, seconds
WRITE_SECONDS = 90.0  # how long the writers write
P99_BOUND = INTERVAL + 60  # issue 8: p99 <= one interval + 60 s
MAX_BOUND = 2 * INTERVAL + 60  # and max <= two intervals + 60 s
LATE_EVERY = 300.0  # --late-every's default: late events wait for a sweep, this often
# The kinds whose events reach CloudWatch Logs minutes after their timestamps: sent by the
# sweeps, so their bounds add the time between sweeps to the ones above.
LATE_KINDS = ("vpc-flow", "cloudtrail")
PAGE = 10_000  # events in one read page: the repeats a kill may cause
FLEET = "fleet"  # the group of 5,000 streams, few of them active
FLEET_STREAMS = 5_000
SUPPORT = Path(__file__).resolve().parent / "support"
REPORT_DIR = Path(
    os.environ.get("AWS_WODLE_LIVE_REPORT", str(ROOT / ".pytest_cache" / "aws-wodle-live"))
)
KINDS = ("busy", "lambda", "vpc-flow", "cloudtrail", "fleet")


# -- the session's own moto, holding the 5,000-stream group ---------------------------------


@pytest.fixture(scope="session")
def live_moto() -> Iterator[MotoServer]:
    """A moto server of this module's own (the ``moto`` fixture empties its server for every
    test) with the 5,000-stream group, created once per session in threads."""
    server = MotoServer()
    logs = server.client()
    logs.create_log_group(logGroupName=FLEET)

    def create(n: int) -> None:
        logs.create_log_stream(logGroupName=FLEET, logStreamName=fleet_stream(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(FLEET_STREAMS)))
    yield server
    server.stop()


def fleet_stream(n: int) -> str:
    return f"i-{n:017x}"


# -- libfaketime -----------------------------------------------------------------------------


def find_faketime() -> str | None:
    for path in sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(
        glob.glob("/usr/lib/faketime/libfaketime.so.1")
    ):
        if os.path.exists(path):
            return path
    return None


@pytest.fixture(scope="session")
def faketime() -> str:
    """libfaketime's library, installed with apt-get when missing (once, under a lock, as
    two test workers may ask at once)."""
    lib = find_faketime()
    if lib is None:
        with open(os.path.join(tempfile.gettempdir(), "aws-wodle-faketime.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lib = find_faketime()
            if lib is None and shutil.which("apt-get"):
                for command in (["apt-get", "update"], ["apt-get", "install", "-y", "faketime"]):
                    subprocess.run(command, capture_output=True, timeout=600, check=False)
                lib = find_faketime()
    if lib is None:
        pytest.skip("libfaketime is missing and `apt-get install -y faketime` did not install it")
    return lib


def faketime_env(lib: str, spec: str) -> dict[str, str]:
    """The collector's environment for a faked clock: monotonic left real (a faked one makes
    threading's timed waits never return), and tests/support/sitecustomize.py replacing
    time.sleep, which fails with EINVAL under libfaketime otherwise."""
    return {
        "LD_PRELOAD": lib,
        "FAKETIME": spec,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


# -- the queue socket, with receive times ------------------------------------------------------


@dataclass
class TimedSink(Sink):
    """The manager's queue, noting when each datagram arrived."""

    stamps: list[float] = field(default_factory=list)

    def _loop(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.stamps.append(time.time())
            self.received.append(data)


HEADER = b"1:Wazuh-AWS:"


def event_id(datagram: bytes) -> str:
    """An event's identity: the first three words of its message (tag, kind, number)."""
    assert datagram.startswith(HEADER), datagram[:40]
    words = datagram[len(HEADER) : len(HEADER) + 80].split(b" ", 3)
    return b" ".join(words[:3]).decode()


# -- the writers ---------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every event put: its put time (just before the call) and kind."""

    tag: str
    put_at: dict[str, float] = field(default_factory=dict)
    kind_of: dict[str, str] = field(default_factory=dict)
    lateness: dict[str, float] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)

    def message(self, kind: str, body: str) -> tuple[str, str]:
        with self.lock:
            n = next(self.counter)
        ident = f"{self.tag} {kind} {n:07d}"
        return ident, f"{ident} {body}"


class Writers:
    """Writers of each kind of stream, putting through the double for ``seconds``."""

    def __init__(
        self, url: str, ledger: Ledger, seed: int, seconds: float, clock: Callable[[], int]
    ) -> None:
        self.url = url
        self.clock = clock  # AWS's clock (ms), which event timestamps follow
        self.ledger = ledger
        self.seed = seed
        self.seconds = seconds
        self.tag = ledger.tag
        self.groups = {
            "busy": f"{self.tag}-busy",
            "lambda": f"/aws/lambda/{self.tag}-fn",
            "vpc-flow": f"{self.tag}-vpc-flow",
            "cloudtrail": f"{self.tag}-cloudtrail",
            "fleet": FLEET,
        }
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "logs",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def prepare(self) -> None:
        logs = self.client()
        for kind, group in self.groups.items():
            if kind != "fleet":
                logs.create_log_group(logGroupName=group)
        for n in range(3):
            logs.create_log_stream(logGroupName=self.groups["busy"], logStreamName=f"web-{n}")
        for n in range(4):
            logs.create_log_stream(
                logGroupName=self.groups["vpc-flow"], logStreamName=f"eni-0{n}abc123-all"
            )
        logs.create_log_stream(
            logGroupName=self.groups["cloudtrail"],
            logStreamName="123456789012_CloudTrail_us-east-1",
        )

    def put(self, logs: Any, kind: str, stream: str, events: list[tuple[int, str, str]]) -> None:
        """Put (timestamp, id, message) events, sorted by timestamp, in one call."""
        events = sorted(events, key=lambda e: e[0])
        at = time.time()
        aws_at = self.clock()
        try:
            logs.put_log_events(
                logGroupName=self.groups[kind],
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": m} for ts, _, m in events],
            )
        except Exception as exc:  # noqa: BLE001 - a failed put is reported, not fatal here
            self.ledger.errors.append(f"{kind}/{stream}: {exc!r}")
            return
        with self.ledger.lock:
            for ts, ident, _ in events:
                self.ledger.put_at[ident] = at
                self.ledger.kind_of[ident] = kind
                self.ledger.lateness[ident] = (aws_at - ts) / 1000

    def start(self) -> None:
        for target in (self.busy, self.lambdas, self.vpc_flow, self.cloudtrail, self.fleet):
            thread = threading.Thread(target=self._run, args=(target,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, target: Any) -> None:
        try:
            target(random.Random(f"{self.seed}-{target.__name__}"), self.client())
        except Exception as exc:  # noqa: BLE001
            self.ledger.errors.append(f"{target.__name__}: {exc!r}")

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=self.seconds + 120)

    def ticks(self, every: float) -> Iterator[float]:
        """Elapsed seconds at each tick, until the writing time is over."""
        began = time.monotonic()
        n = 0
        while not self.stop.is_set():
            elapsed = time.monotonic() - began
            if elapsed >= self.seconds:
                return
            yield elapsed
            n += 1
            self.stop.wait(max(0.0, began + n * every - time.monotonic()))

    def busy(self, rng: random.Random, logs: Any) -> None:
        """Three busy streams: 10 events a stream every 0.5 s, all of a batch in one
        millisecond; a 200 KB message in one of them every ~7 s; halfway, an 80-event burst
        of 16 KB messages in one millisecond (two puts, over 1 MB together)."""
        burst_done = False
        for elapsed in self.ticks(0.5):
            now = self.clock()
            for n in range(3):
                batch = [
                    (now, *self.ledger.message("busy", f"GET /item/{rng.randrange(10**6)} 200"))
                    for _ in range(10)
                ]
                self.put(logs, "busy", f"web-{n}", batch)
            if rng.random() < 0.07:
                ident, message = self.ledger.message("busy", "big " + "b" * 200_000)
                self.put(logs, "busy", f"web-{rng.randrange(3)}", [(now, ident, message)])
            if not burst_done and elapsed >= self.seconds / 2:
                burst_done = True
                at = self.clock()
                burst = [
                    (at, *self.ledger.message("busy", "burst " + "u" * 16_000)) for _ in range(80)
                ]
                self.put(logs, "busy", "web-0", burst[:40])
                self.put(logs, "busy", "web-0", burst[40:])

    def lambdas(self, rng: random.Random, logs: Any) -> None:
        """A Lambda-like group: a new stream every 4 s, written for 12 s, then left."""
        live: list[tuple[str, float]] = []
        for elapsed in self.ticks(1.0):
            if not live or elapsed - live[-1][1] >= 4:
                name = f"2024/01/01/[$LATEST]{rng.getrandbits(128):032x}"
                logs.create_log_stream(logGroupName=self.groups["lambda"], logStreamName=name)
                live.append((name, elapsed))
            for name, born in live:
                if elapsed - born <= 12:
                    now = self.clock()
                    batch = [
                        (now + k, *self.ledger.message("lambda", f"REPORT Duration: {k} ms"))
                        for k in range(rng.randint(1, 5))
                    ]
                    self.put(logs, "lambda", name, batch)

    def vpc_flow(self, rng: random.Random, logs: Any) -> None:
        """VPC-flow-like streams: records put 1-10 minutes after their timestamps."""
        for _ in self.ticks(2.0):
            for n in range(4):
                now = self.clock()
                batch = [
                    (
                        now - rng.randint(60_000, 600_000),
                        *self.ledger.message(
                            "vpc-flow", f"2 123456789012 eni-0{n}abc123 10.0.0.{k} ACCEPT OK"
                        ),
                    )
                    for k in range(rng.randint(5, 15))
                ]
                self.put(logs, "vpc-flow", f"eni-0{n}abc123-all", batch)

    def cloudtrail(self, rng: random.Random, logs: Any) -> None:
        """A CloudTrail-like stream: events delivered 3-12 minutes after eventTime."""
        for _ in self.ticks(2.0):
            now = self.clock()
            batch = [
                (
                    now - rng.randint(180_000, 720_000),
                    *self.ledger.message("cloudtrail", json.dumps({"eventName": "GetObject"})),
                )
                for _ in range(rng.randint(1, 10))
            ]
            self.put(logs, "cloudtrail", "123456789012_CloudTrail_us-east-1", batch)

    def fleet(self, rng: random.Random, logs: Any) -> None:
        """The 5,000-stream group: every 2 s, two of its streams get 1-3 events."""
        for _ in self.ticks(2.0):
            for _ in range(2):
                stream = fleet_stream(rng.randrange(FLEET_STREAMS))
                now = self.clock()
                batch = [
                    (now + k, *self.ledger.message("fleet", "heartbeat ok"))
                    for k in range(rng.randint(1, 3))
                ]
                self.put(logs, "fleet", stream, batch)


# -- one scenario ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one live run measured."""

    name: str
    rows: dict[str, dict[str, float]]
    lost: int
    repeated: int
    kills: int
    errors: list[str]
    calls: dict[str, int]
    shaped: dict[str, int]

    def table(self) -> str:
        lines = [
            f"live run `{self.name}`: kills {self.kills}, calls {json.dumps(self.calls)}, "
            f"double {json.dumps(self.shaped)}",
            "",
            "| kind | events | lost | repeated | p50 latency s | p99 latency s | max latency s |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind in (*KINDS, "prompt", "late", "all"):
            r = self.rows[kind]
            lines.append(
                f"| {kind} | {r['events']:.0f} | {r['lost']:.0f} | {r['repeated']:.0f} | "
                f"{r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |"
            )
        return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, ledger: Ledger, sink: TimedSink) -> tuple[dict[str, dict[str, float]], int]:
    """Per kind: events, lost, repeated and latency (first receipt minus put); and how many
    datagrams matched no event of this run (none should)."""
    first: dict[str, float] = {}
    seen: dict[str, int] = {}
    foreign = 0
    for at, data in zip(list(sink.stamps), list(sink.received), strict=False):
        ident = event_id(data)
        if ident not in ledger.put_at:
            foreign += ident.split(" ", 1)[0] == ledger.tag
            continue
        seen[ident] = seen.get(ident, 0) + 1
        first.setdefault(ident, at)
    rows: dict[str, dict[str, float]] = {}
    classes = {"prompt": [k for k in KINDS if k not in LATE_KINDS], "late": list(LATE_KINDS)}
    for kind in (*KINDS, *classes, "all"):
        among = classes.get(kind, KINDS if kind == "all" else [kind])
        idents = [i for i, k in ledger.kind_of.items() if k in among]
        latencies = [first[i] - ledger.put_at[i] for i in idents if i in first]
        rows[kind] = {
            "events": len(idents),
            "lost": sum(1 for i in idents if i not in first),
            "repeated": sum(seen.get(i, 0) - 1 for i in idents if i in seen),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=0.0),
        }
    return rows, foreign


@dataclass
class Live:
    """One live run: the double in front of the session's moto, writers, the daemon."""

    name: str
    moto: MotoServer
    folder: Path
    seed: int
    env: dict[str, str] = field(default_factory=dict)
    service: dict[str, str] = field(default_factory=dict)
    kill_every: tuple[float, float] | None = None
    clock_rate: float = 1.0
    late_every: float = LATE_EVERY  # seconds of AWS's clock, as the sweeps count them

    def run(self) -> Outcome:
        like = AwsLike.all_on(
            self.seed, visibility=(0.5, 5.0), stale_fields=600.0, clock_rate=self.clock_rate
        )
        proxy = AwsProxy(self.moto.url, like=like)
        queue_dir = tempfile.mkdtemp(prefix="awl")
        sink = TimedSink(os.path.join(queue_dir, "queue"))
        sink.bind()
        tag = f"{self.name}{self.seed % 10_000:04d}"
        ledger = Ledger(tag)
        writers = Writers(proxy.url, ledger, self.seed, WRITE_SECONDS, proxy.aws_ms)
        kills = 0
        procs: list[subprocess.Popen[bytes]] = []
        try:
            writers.prepare()
            yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))
            groups = ",".join(writers.groups.values())
            config = write_config(
                self.folder,
                service_xml(proxy.url, groups, only_logs_after=yesterday, **self.service),
                interval=f"{INTERVAL:g}s",
            )
            stderr = open(self.folder / "daemon.log", "ab")  # noqa: SIM115 - kept for restarts
            command = [
                sys.executable, "-m", "aws_wodle", "run", "--config", str(config),
                "--queue", sink.path, "--state", str(self.folder / "state.db"),
            ]  # fmt: skip
            if self.late_every != LATE_EVERY:
                command += ["--late-every", f"{self.late_every:g}s"]
            env = cli_env(**self.env)

            def start() -> subprocess.Popen[bytes]:
                proc = subprocess.Popen(command, env=env, stderr=stderr)
                procs.append(proc)
                return proc

            proc = start()
            writers.start()
            rng = random.Random(self.seed)
            began = time.monotonic()
            while any(t.is_alive() for t in writers.threads):
                if self.kill_every is None:
                    time.sleep(1.0)
                    continue
                # A random pause, then a random moment within 0.2 s of a datagram, so
                # that most kills land while a cycle is sending, not between cycles.
                time.sleep(rng.uniform(*self.kill_every))
                seen = len(sink.received)
                sending = time.monotonic() + 2 * INTERVAL
                while len(sink.received) == seen and time.monotonic() < sending:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.2))
                if time.monotonic() - began > WRITE_SECONDS:
                    break
                proc.kill()
                proc.wait(timeout=10)
                kills += 1
                proc = start()
            writers.join()
            # The drain: until every event arrived, at most the late events' latency bound
            # (in real seconds) after the last put; then two more cycles, to see any repeat.
            last_put = max(ledger.put_at.values(), default=time.time())
            sweeps = self.late_every / self.clock_rate
            deadline = last_put + MAX_BOUND + sweeps + 2 * INTERVAL
            while time.time() < deadline:
                got = {event_id(d) for d in list(sink.received)}
                if got >= ledger.put_at.keys():
                    break
                time.sleep(0.5)
            time.sleep(2 * INTERVAL + 2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            stderr.close()
        finally:
            writers.stop.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            sink.unbind()
            shutil.rmtree(queue_dir, ignore_errors=True)
            proxy.stop()
        rows, foreign = measure(self.name, ledger, sink)
        log = (self.folder / "daemon.log").read_text(errors="replace").splitlines()
        errors = [line for line in log if line.startswith("<3>")]
        errors += ledger.errors + proxy.stats.delivery_errors
        if foreign:
            errors.append(f"{foreign} datagrams of this run's tag matched no event put")
        outcome = Outcome(
            name=self.name,
            rows=rows,
            lost=int(rows["all"]["lost"]),
            repeated=int(rows["all"]["repeated"]),
            kills=kills,
            errors=errors,
            calls=dict(proxy.stats.calls),
            shaped=dict(proxy.stats.shaped),
        )
        report(outcome)
        return outcome


def report(outcome: Outcome) -> None:
    """Print the per-kind table and keep it (for the README) under .pytest_cache."""
    text = outcome.table()
    print("\n" + text)
    with contextlib.suppress(OSError):
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        (REPORT_DIR / f"{outcome.name}.md").write_text(text + "\n")


def no_stack_dumps() -> None:
    """pytest's faulthandler_timeout (120 s) would dump every thread's stack midway through a
    run that is meant to last minutes."""
    faulthandler.cancel_dump_traceback_later()


def check(outcome: Outcome, *, latency: bool = True, late_every: float = LATE_EVERY) -> None:
    """0 lost; 0 repeated without kills, at most a page a kill; latency within the bounds:
    one or two intervals + 60 s, plus ``late_every`` (real seconds) for the late kinds."""
    assert outcome.errors == [], outcome.errors[:20]
    assert outcome.shaped.get("expired credentials refused", 0) == 0
    for kind in KINDS:
        r = outcome.rows[kind]
        assert r["events"] > 0, kind
        assert r["lost"] == 0, (kind, outcome.table())
        if outcome.kills == 0:
            assert r["repeated"] == 0, (kind, outcome.table())
        if latency:
            sweeps = late_every if kind in LATE_KINDS else 0.0
            assert r["p99"] <= P99_BOUND + sweeps, (kind, outcome.table())
            assert r["max"] <= MAX_BOUND + sweeps, (kind, outcome.table())
    assert outcome.repeated <= outcome.kills * PAGE, outcome.table()
    assert outcome.shaped.get("puts delayed", 0) > 0
    assert outcome.shaped.get("pages capped", 0) > 0
    assert outcome.shaped.get("pages cut short", 0) + outcome.shaped.get("pages empty", 0) > 0


def seed_of(name: str) -> int:
    configured = os.environ.get("AWS_WODLE_LIVE_SEED")
    return int(configured) if configured else sum(map(ord, name)) * 7919


@pytest.mark.parametrize(
    "clock",
    [None, "+3600", "-3600"],
    ids=["real-clock", "clock+1h", "clock-1h"],
)
def test_live_every_kind_of_stream(
    live_moto: MotoServer, tmp_path: Path, clock: str | None, request: pytest.FixtureRequest
) -> None:
    """Every kind of stream, every behaviour on: 0 lost, 0 repeated, latency within bounds."""
    no_stack_dumps()
    env = faketime_env(request.getfixturevalue("faketime"), clock) if clock else {}
    name = {None: "real", "+3600": "plus1h", "-3600": "minus1h"}[clock]
    # The shifted clocks sweep every minute: the same reads, a drain 4 minutes shorter.
    late_every = LATE_EVERY if clock is None else 60.0
    live = Live(name, live_moto, tmp_path, seed_of(name), env=env, late_every=late_every)
    outcome = live.run()
    check(outcome, late_every=late_every)


def test_live_assumed_role_renewed_under_a_fast_clock(
    live_moto: MotoServer, tmp_path: Path, faketime: str
) -> None:
    """A 900 s role under a 60-times clock is renewed several times with no failed call."""
    no_stack_dumps()
    service = {
        "iam_role_arn": "arn:aws:iam::123456789012:role/x",
        "iam_role_duration": "900",
    }
    # AWS's clock (the double's) and the collector's both run 60 times as fast: the run
    # spans over two hours of them, some nine lifetimes of the role. (Event timestamps
    # follow AWS's clock; moto refuses any over 2 h ahead of its own, real, clock.)
    assert (WRITE_SECONDS + 20) * 60 < 2 * 3600
    env = faketime_env(faketime, "+0 x60")
    live = Live("role", live_moto, tmp_path, seed_of("role"), env=env, service=service)
    live.clock_rate = 60.0
    outcome = live.run()
    assumed = outcome.calls.get("AssumeRole", 0)
    assert assumed >= 4, outcome.calls
    check(outcome, late_every=LATE_EVERY / live.clock_rate)


def test_live_kill9_at_random_moments(live_moto: MotoServer, tmp_path: Path) -> None:
    """SIGKILL mid-send every 5-35 s, restarted: 0 lost, repeats within a page per kill."""
    no_stack_dumps()
    outcome = Live("kill9", live_moto, tmp_path, seed_of("kill9"), kill_every=(5.0, 15.0)).run()
    assert outcome.kills >= 3
    check(outcome, latency=False)
