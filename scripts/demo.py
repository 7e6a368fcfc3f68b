"""End-to-end demo: aws-wodle collects CloudWatch Logs from a local moto server for a fake manager.

Run with ``make demo``. Everything it starts (moto, the daemon, the queue socket, temporary
files) is stopped and removed at the end, also on Ctrl-C or error. Exit status 0 means every
check passed: the first cycle forwarded every seeded event, the second exactly the new ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from lxml import etree

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "etc" / "ossec.conf.example"

ACCOUNT = "123456789012"  # moto's default account, which STS reports for any key
REGION = "us-east-1"
VPC_GROUP = "/aws/vpc/flowlogs"
ECR_GROUP = "/aws/events/ecr-image-scan"
LAMBDA_GROUP = "/aws/lambda/payments-api"
GROUPS = (VPC_GROUP, ECR_GROUP, LAMBDA_GROUP)
ENIS = ("eni-0a1b2c3d", "eni-0e4f5a6b")

HEADER = b"1:Wazuh-AWS:"
# Keys moto accepts for anything; nothing here ever reaches AWS.
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
DEMO_INTERVAL = "10s"
DEMO_SETTLE = "1s"
# The seeded events are stamped up to three minutes before moto ingests them: late events,
# which a cycle holds while they are within the settle margin and a sweep sends (every 5
# minutes by default). The demo lets the margin pass before the daemon starts, so that its
# first cycle sends them all.
SEEDED_WAIT = 1.5
SHOWN_CHARS = 160
# The daemon reads and forwards in well under a second here; the rest is start-up slack.
FIRST_CYCLE_TIMEOUT = 30.0
# One interval (10 s) plus slack.
SECOND_CYCLE_TIMEOUT = 25.0
# After the expected count arrived, how long to keep listening for repeats or extras.
SETTLE_SECONDS = 1.5
STOP_TIMEOUT = 10.0


class DemoError(Exception):
    """A step of the demo did not go as expected; the message says what was seen."""


# ---------------------------------------------------------------------------------------------
# processes


def step(text: str) -> None:
    """Announce a step of the demo."""
    print(f"\n==> {text}", flush=True)


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aws_env() -> dict[str, str]:
    """The environment for child processes: our fake keys, no profile, files or metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_KEYS)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = "/nonexistent/aws-wodle-demo/config"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws-wodle-demo/credentials"
    return env


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """Start a moto server on ``port``, quiet; see ``wait_for_moto``."""
    return subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=aws_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Out of the terminal's reach: on Ctrl-C, moto must outlive the daemon's last page.
        start_new_session=True,
    )


def wait_for_moto(proc: subprocess.Popen[bytes], url: str) -> None:
    """Wait until the moto server at ``url`` answers ``GET /moto-api/``."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return
        except OSError:
            if proc.poll() is not None:
                raise DemoError(
                    f"moto server exited at start with status {proc.returncode}"
                ) from None
            if time.monotonic() > deadline:
                raise DemoError("moto server did not answer within 30 s") from None
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], name: str) -> int | None:
    """Ask a child to stop with SIGTERM, kill it if it lingers; returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            proc.kill()
            proc.wait()
    return proc.returncode


def start_daemon(config: Path, queue: str, state: Path) -> subprocess.Popen[bytes]:
    """Start ``aws-wodle run`` as a child; its log lines go straight to our stderr.

    It runs in its own session, so that Ctrl-C reaches only the demo, which then stops it
    with SIGTERM, as it does at the end of a normal run.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aws_wodle",
            "run",
            "--config",
            str(config),
            "--queue",
            queue,
            "--state",
            str(state),
            "--log-level",
            "info",
            # moto makes an event readable the moment it accepts it; against AWS the
            # default margin (30 s) covers its eventual consistency.
            "--settle",
            DEMO_SETTLE,
        ],
        env=aws_env(),
        start_new_session=True,
    )


def run_status(state: Path, *extra: str) -> str:
    """Run ``aws-wodle status`` on the state file and return its output."""
    done = subprocess.run(
        [sys.executable, "-m", "aws_wodle", "status", "--state", str(state), *extra],
        env=aws_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"status exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------------------------------------
# the manager's queue


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters for display, marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class QueueSink:
    """A bound Unix datagram socket standing in for the manager's queue; prints what it gets."""

    path: str
    received: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def bind(self) -> None:
        """Bind the socket and start receiving in a thread."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(self.path)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name="queue-sink", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        """Receive datagrams until closed, printing each as the manager would see it."""
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(1 << 17)
            except TimeoutError:
                continue
            except OSError:
                return
            print(f"manager got: {shorten(data.decode('utf-8', errors='replace'))}", flush=True)
            with self._arrived:
                self.received.append(data)
                self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` datagrams in all arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def messages(self, start: int = 0) -> list[str]:
        """The payloads received from index ``start`` on, without the header."""
        with self._arrived:
            data = list(self.received[start:])
        bad = [d for d in data if not d.startswith(HEADER)]
        if bad:
            raise DemoError(f"datagram without the {HEADER.decode()} header: {bad[0][:60]!r}")
        return [d[len(HEADER) :].decode("utf-8", errors="replace") for d in data]

    def close(self) -> None:
        """Stop the thread, close and remove the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


# ---------------------------------------------------------------------------------------------
# realistic log events


@dataclass(frozen=True)
class Event:
    """One log event to put: where, when (ms since the epoch) and what."""

    group: str
    stream: str
    timestamp: int
    message: str


@dataclass(frozen=True)
class Flow:
    """One TCP flow seen on an interface, and what the security groups and ACLs did with it."""

    src: str
    dst: str
    src_port: int
    dst_port: int
    action: str


def flow_line(eni: str, flow: Flow, ts: int) -> str:
    """A VPC flow log record in the default version 2 format, its window ending at ``ts``."""
    end = ts // 1000
    start = end - 58
    packets = secrets.randbelow(40) + 1
    size = packets * (secrets.randbelow(1400) + 60)
    return (
        f"2 {ACCOUNT} {eni} {flow.src} {flow.dst} {flow.src_port} {flow.dst_port} 6 "
        f"{packets} {size} {start} {end} {flow.action} OK"
    )


def flow_events(first: int) -> list[Event]:
    """Five flow records per interface stream, a few of them rejected, 1 s apart."""
    flows = [
        Flow("10.0.1.5", "203.0.113.12", 443, 49152, "ACCEPT"),
        Flow("198.51.100.7", "10.0.1.5", 51234, 22, "REJECT"),
        Flow("10.0.1.5", "10.0.2.20", 40112, 5432, "ACCEPT"),
        Flow("192.0.2.44", "10.0.1.5", 60001, 3389, "REJECT"),
        Flow("10.0.1.5", "52.94.133.131", 443, 38822, "ACCEPT"),
    ]
    events = []
    for n, eni in enumerate(ENIS):
        for i, flow in enumerate(flows):
            ts = first + n * 100 + i * 1000
            events.append(Event(VPC_GROUP, f"{eni}-all", ts, flow_line(eni, flow, ts)))
    return events


def ecr_finding(repository: str, tag: str, counts: dict[str, int], ts: int) -> str:
    """An ECR image scan result as EventBridge delivers it to CloudWatch Logs."""
    moment = datetime.fromtimestamp(ts / 1000, tz=timezone.utc)
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Scan",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repository}"],
        "detail": {
            "scan-status": "COMPLETE",
            "repository-name": repository,
            "finding-severity-counts": counts,
            "image-digest": "sha256:" + secrets.token_hex(32),
            "image-tags": [tag],
        },
    }
    return json.dumps(event, separators=(",", ":"))


def ecr_events(first: int) -> list[Event]:
    """Three scan results in one stream, as an EventBridge rule writes them."""
    stream = str(uuid.uuid4())
    scans = [
        ("payments", "v1.4.2", {"CRITICAL": 1, "HIGH": 3}),
        ("orders", "2026.11.3", {"MEDIUM": 2, "LOW": 5}),
        ("payments", "v1.4.3", {"HIGH": 1}),
    ]
    return [
        Event(ECR_GROUP, stream, first + i * 1500, ecr_finding(repo, tag, counts, first + i * 1500))
        for i, (repo, tag, counts) in enumerate(scans)
    ]


def lambda_stream(ts: int) -> str:
    """A Lambda log stream name: the day, the version and the execution environment id."""
    day = datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{secrets.token_hex(16)}"


def lambda_invocation(stream: str, first: int, order_id: str) -> list[Event]:
    """The four lines one Lambda invocation writes: START, an app line, END and REPORT."""
    request = str(uuid.uuid4())
    duration = 8 + secrets.randbelow(2000) / 100
    lines = [
        f"START RequestId: {request} Version: $LATEST",
        f"{datetime.fromtimestamp(first / 1000, tz=timezone.utc).isoformat()}\t{request}\tINFO\t"
        f"charge captured order_id={order_id} amount=42.50 currency=EUR",
        f"END RequestId: {request}",
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: 256 MB\tMax Memory Used: 81 MB",
    ]
    return [Event(LAMBDA_GROUP, stream, first + i * 3, line) for i, line in enumerate(lines)]


def new_events(lambda_log: str, now: int) -> list[Event]:
    """The events added between cycles: a rejected SSH attempt and one more invocation."""
    eni = ENIS[0]
    ssh = flow_line(eni, Flow("203.0.113.99", "10.0.1.5", 55100, 22, "REJECT"), now)
    return [
        Event(VPC_GROUP, f"{eni}-all", now, ssh),
        *lambda_invocation(lambda_log, now + 1, "ord-77814"),
    ]


def put_events(logs: CloudWatchLogsClient, events: list[Event]) -> None:
    """Create the groups and streams these events need, then put them, stream by stream."""
    by_stream: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        by_stream.setdefault((event.group, event.stream), []).append(event)
    for group, stream in by_stream:
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
    for (group, stream), batch in by_stream.items():
        ordered = sorted(batch, key=lambda e: e.timestamp)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": e.timestamp, "message": e.message} for e in ordered],
        )


def seed_start(now_ms: int) -> int:
    """Three minutes ago, but not before today's 00:00 UTC, where the daemon starts reading."""
    midnight = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(now_ms - 180_000, int(midnight.timestamp() * 1000))


# ---------------------------------------------------------------------------------------------
# the configuration


def demo_config(example: Path, target: Path, moto_url: str) -> None:
    """Copy the example config, pointed at moto, with env keys and a 10 s interval."""
    tree = etree.parse(str(example))
    wodle = tree.find(".//wodle[@name='aws-s3']")
    service = tree.find(".//wodle[@name='aws-s3']/service[@type='cloudwatchlogs']")
    if wodle is None or service is None:
        raise DemoError(f"{example}: no aws-s3 wodle with a cloudwatchlogs service")
    groups = tuple(g.strip() for g in service.findtext("aws_log_groups", "").split(","))
    if groups != GROUPS:
        raise DemoError(f"{example} lists the groups {groups}; the demo seeds {GROUPS}")
    interval = wodle.find("interval")
    if interval is None:
        raise DemoError(f"{example}: the wodle has no <interval>")
    interval.text = DEMO_INTERVAL
    profile = service.find("aws_profile")
    if profile is not None:
        note = etree.Comment(" aws_profile removed: the demo's keys come from the environment ")
        note.tail = profile.tail
        service.replace(profile, note)
    # After <regions>, indented like it: each new option takes over the tail of the one before.
    anchor = service.find("regions")
    if anchor is None:
        anchor = service.find("aws_log_groups")
    assert anchor is not None  # the groups were read above
    for name in ("service_endpoint", "sts_endpoint"):
        option = etree.Element(name)
        option.text = moto_url
        option.tail = anchor.tail
        anchor.tail = service.text
        anchor.addnext(option)
        anchor = option
    target.write_bytes(serialize(tree))


def serialize(tree: etree._ElementTree) -> bytes:
    """The document as text, each comment before the root on its own lines as in the source,
    so that the line numbers the daemon logs match the example's."""
    root = tree.getroot()
    before = [etree.tostring(node, encoding="utf-8") for node in root.itersiblings(preceding=True)]
    return b"\n".join([*reversed(before), etree.tostring(root, encoding="utf-8")]) + b"\n"


# ---------------------------------------------------------------------------------------------
# checks


def check_arrivals(got: list[str], expected: list[Event], seen_before: set[str], what: str) -> None:
    """Check that a cycle forwarded exactly the expected events: none again, none missing."""
    repeated = sum(1 for message in got if message in seen_before)
    if repeated:
        raise DemoError(f"{what}: {repeated} events of an earlier cycle forwarded again")
    wanted = sorted(e.message for e in expected)
    if sorted(got) != wanted:
        missing = len(set(wanted) - set(got))
        raise DemoError(
            f"{what}: {len(got)} events, expected {len(wanted)} ({missing} of them missing)"
        )


def wait_cycle(sink: QueueSink, start: int, expected: int, timeout: float, what: str) -> list[str]:
    """Wait for ``expected`` datagrams after index ``start``, then a little for any extra."""
    if not sink.wait_for(start + expected, timeout):
        got = len(sink.messages(start))
        raise DemoError(f"{what}: {got} of {expected} events arrived within {timeout:.0f} s")
    time.sleep(SETTLE_SECONDS)
    return sink.messages(start)


# ---------------------------------------------------------------------------------------------
# the demo


@dataclass
class Demo:
    """The running pieces, so that ``cleanup`` can stop whatever was started."""

    folder: Path
    moto: subprocess.Popen[bytes] | None = None
    sink: QueueSink | None = None
    daemon: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        """Every step in order; raises DemoError at the first that does not go as expected."""
        step("Starting a moto server: a local stand-in for the CloudWatch Logs and STS APIs")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        self.moto = start_moto(port)
        wait_for_moto(self.moto, url)
        print(f"moto answers at {url}")
        logs = boto3.client(
            "logs",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id=FAKE_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_KEYS["AWS_SECRET_ACCESS_KEY"],
        )

        step(f"Seeding three log groups in {REGION} with events of the last few minutes")
        first = seed_start(int(time.time() * 1000))
        lambda_log = lambda_stream(first)
        seeded = (
            flow_events(first)
            + ecr_events(first + 400)
            + lambda_invocation(lambda_log, first + 700, "ord-77812")
            + lambda_invocation(lambda_log, first + 5200, "ord-77813")
        )
        put_events(logs, seeded)
        time.sleep(SEEDED_WAIT)
        for group in GROUPS:
            streams = sorted({e.stream for e in seeded if e.group == group})
            count = sum(1 for e in seeded if e.group == group)
            print(f"{group}: {count} events in {', '.join(streams)}")

        step("Binding a Unix datagram socket that plays the manager's queue")
        self.sink = QueueSink(str(self.folder / "queue"))
        self.sink.bind()
        print(f"queue socket: {self.sink.path}")

        step("Writing the demo's copy of etc/ossec.conf.example")
        config = self.folder / "ossec.conf"
        demo_config(EXAMPLE, config, url)
        print(
            f"{config}: interval {DEMO_INTERVAL}, service_endpoint and sts_endpoint {url}, "
            "no aws_profile (the demo's fake keys come from the environment)"
        )

        step("Starting the daemon: it collects at once, then every 10 s (its log lines follow)")
        state = self.folder / "state.db"
        self.daemon = start_daemon(config, self.sink.path, state)
        got = wait_cycle(self.sink, 0, len(seeded), FIRST_CYCLE_TIMEOUT, "first cycle")
        check_arrivals(got, seeded, set(), "first cycle")
        print(f"first cycle: {len(got)} events")

        step("Adding new events to two groups; the next cycle must forward only these")
        added = new_events(lambda_log, int(time.time() * 1000))
        put_events(logs, added)
        print(f"{len(added)} new events; waiting for the next cycles (up to 25 s)")
        got = wait_cycle(self.sink, len(seeded), len(added), SECOND_CYCLE_TIMEOUT, "second cycle")
        check_arrivals(got, added, {e.message for e in seeded}, "second cycle")
        print(f"second cycle: {len(got)} new events, 0 repeated")

        step("Stopping the daemon with SIGTERM, as systemd would")
        status = stop_process(self.daemon, "the daemon")
        if status != 0:
            raise DemoError(f"the daemon exited with status {status} after SIGTERM, expected 0")
        print("the daemon exited with status 0")

        step("What the state file says (aws-wodle status)")
        print(run_status(state), end="")
        report = json.loads(run_status(state, "--json"))
        total = sum(int(row["events_forwarded"]) for row in report["groups"])
        if total != len(seeded) + len(added):
            raise DemoError(f"status counts {total} events, {len(seeded) + len(added)} were sent")

    def cleanup(self) -> None:
        """Stop the daemon and moto, close the socket, remove the temporary files."""
        if self.daemon is not None:
            stop_process(self.daemon, "the daemon")
        if self.moto is not None:
            stop_process(self.moto, "moto")
        if self.sink is not None:
            self.sink.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    """Run the demo; 0 when every check passed, 1 otherwise."""
    started = time.monotonic()
    # Socket paths are limited to 107 bytes: keep the folder short, under /tmp.
    demo = Demo(Path(tempfile.mkdtemp(prefix="aws-wodle-demo-", dir="/tmp")))
    try:
        demo.run()
    except DemoError as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr, flush=True)
        return 1
    finally:
        demo.cleanup()
    print(f"\ndemo OK: every check passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
