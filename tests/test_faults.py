"""Faults injected for real: kill -9, a manager that goes away, throttling, bad input, bad
state; and AWS's own behaviours (late events, read-after-write delay, 1 MB and short pages,
stale stream fields).

Every test that talks to CloudWatch Logs runs twice (the ``via`` fixture): straight against
moto, and through the AWS-like double (tests/awsproxy.py) with every behaviour on, writers
included; there the collector runs with a settle margin above the double's visibility delay,
and a test waits that margin out before a collection that must see everything. The README's
"What it survives" table is recorded from the runs through the double.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from awsproxy import AwsLike, AwsProxy, random_faults
from conftest import (
    Setup,
    Via,
    cli_env,
    now_ms,
    put,
    record_survival,
    run_cli,
    seed,
    start_daemon,
)

PAGE = 10_000  # events in one read page: what a kill may repeat


def distinct(stream: str, count: int) -> list[str]:
    return [f"{stream}:{i:06d}" for i in range(count)]


def seed_many(
    setup: Setup, via: Via, streams: int, per_stream: int, group: str = "app"
) -> set[str]:
    logs = via.client()
    start = now_ms() - 3_600_000
    content = {f"s{n:02d}": distinct(f"{group}/s{n:02d}", per_stream) for n in range(streams)}
    seed(logs, group, content, start=start)
    return {m for messages in content.values() for m in messages}


def record(via: Via, fault: str, how: str, measured: str, *, lost: int, repeated: int) -> None:
    """Keep the README row from the run through the AWS-like double."""
    if via.proxy is not None:
        record_survival(fault, how, measured, lost, repeated)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err or ""


def _once(setup: Setup, via: Via, conf: Path) -> list[str]:
    return [
        sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(conf),
        "--queue", setup.sink.path, "--state", setup.state, *via.flags(),
    ]  # fmt: skip


def test_kill9_at_random_moments_loses_nothing(setup: Setup, via: Via) -> None:
    """SIGKILL at 10 random moments: every event arrives; repeats are at most a page a kill."""
    expected = seed_many(setup, via, streams=20, per_stream=5_000)
    via.settled()
    conf = setup.config(via.service("app"), interval="1h")
    seed_value = int(os.environ.get("AWS_WODLE_KILL_SEED", str(time.time_ns())))
    rng = random.Random(seed_value)
    kills = 0
    for _ in range(10):
        before = len(setup.sink.received)
        proc = start_daemon(setup, conf, subprocess.DEVNULL, *via.flags())
        # Kill while it sends: once this run's first events arrive, at a random moment
        # within the next 0.3 s (a page of 10,000 takes about that long to send).
        setup.sink.wait_for(before + 1, timeout=20)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=10)
        kills += 1
    proc = start_daemon(setup, conf, subprocess.DEVNULL, *via.flags())
    deadline = time.monotonic() + 120
    while len(set(setup.sink.received)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop(proc)
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record(
        via,
        "kill -9",
        f"100,000 events in 20 streams; SIGKILL at {kills} random moments while sending, "
        "restart after each",
        f"{repeated:,} repeats over {kills} kills (bound: one page of {PAGE:,} per kill; "
        f"seed {seed_value})",
        lost=lost,
        repeated=repeated,
    )
    assert lost == 0, f"seed {seed_value}"
    assert repeated <= kills * PAGE, f"seed {seed_value}"


def test_manager_away_at_start(setup: Setup, via: Via) -> None:
    """No queue socket at start: the daemon waits, logs once, and sends all when it appears."""
    expected = seed_many(setup, via, streams=3, per_stream=200)
    via.settled()
    setup.sink.unbind()
    conf = setup.config(via.service("app"))
    proc = subprocess.Popen(_once(setup, via, conf), env=cli_env(), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    # Keep the socket away until the daemon has tried to send, and a second longer.
    deadline = time.monotonic() + 60
    while not any("unavailable" in line for line in lines) and time.monotonic() < deadline:
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the daemon must wait for the manager"
    bound_at = time.monotonic()
    setup.sink.bind()
    proc.wait(timeout=60)
    resumed_after = time.monotonic() - bound_at
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    outages = [line for line in err.splitlines() if "unavailable" in line]
    record(
        via,
        "manager away at start",
        "no queue socket when the daemon first sends, and for 1 s more, then bound (ENOENT)",
        f"{len(outages)} log line for the outage; all sent {resumed_after:.1f} s after bind",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert len(outages) == 1, err
    assert "ENOENT" in outages[0]


def test_manager_restarts_mid_run(setup: Setup, via: Via) -> None:
    """The queue goes away mid-run (refused, then missing) and comes back: nothing lost."""
    expected = seed_many(setup, via, streams=4, per_stream=15_000)
    via.settled()
    conf = setup.config(via.service("app"))
    proc = subprocess.Popen(_once(setup, via, conf), env=cli_env(), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    setup.sink.wait_for(3_000)
    setup.sink.unbind()
    # A stale socket file (ECONNREFUSED) first, then none at all (ENOENT).
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(setup.sink.path)
    stale.close()
    time.sleep(1.0)
    os.unlink(setup.sink.path)
    time.sleep(1.0)
    setup.sink.bind()
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    outages = [line for line in err.splitlines() if "unavailable" in line]
    record(
        via,
        "manager restarts mid-run",
        "queue socket taken away after 3,000 of 60,000 events: a stale socket file "
        "(ECONNREFUSED) for 1 s, then none (ENOENT) for 1 s, then bound again",
        f"{len(outages)} log line for the outage",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert len(outages) == 1


def test_manager_queue_full(setup: Setup, via: Via) -> None:
    """A manager that stops reading (full queue) holds the daemon back; nothing is dropped."""
    expected = seed_many(setup, via, streams=2, per_stream=10_000)
    via.settled()
    setup.sink.paused.set()
    conf = setup.config(via.service("app"))
    proc = subprocess.Popen(_once(setup, via, conf), env=cli_env(), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    time.sleep(4.0)
    assert proc.poll() is None
    setup.sink.paused.clear()
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record(
        via,
        "manager queue full",
        "the queue socket is not read for 4 s (sends block, then EAGAIN)",
        "the daemon waited, then sent everything",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)


@pytest.fixture
def faulty(setup: Setup, via: Via) -> Iterator[AwsProxy]:
    """The proxy to inject faults with: the double itself, or a plain proxy before moto."""
    if via.proxy is not None:
        yield via.proxy
        return
    server = AwsProxy(setup.moto.url)
    yield server
    server.stop()


def until_clean(setup: Setup, conf: Path, flags: tuple[str, ...], runs: int = 6) -> int:
    """Run ``--once`` until a run ends without failures; how many runs that took. A run
    that failed a group says it is retried next cycle, and the next run must read it."""
    for n in range(1, runs + 1):
        result = setup.once(conf, *flags)
        if result.returncode == 0:
            return n
        assert "retried next cycle" in result.stderr, result.stderr
    raise AssertionError(f"{runs} runs in a row failed")


def test_throttling_errors_resets_and_delays(setup: Setup, via: Via, faulty: AwsProxy) -> None:
    """Throttles, 5xx, resets, answers cut mid-body or not JSON, and slow answers on half
    of reads: all collected, once. A call that fails every attempt fails its group for the
    cycle; the next cycle reads it."""
    expected = seed_many(setup, via, streams=15, per_stream=100, group="many")
    expected |= seed_many(setup, via, streams=4, per_stream=2_500, group="few")
    via.settled()
    faulty.policy = random_faults(
        7,
        throttle=0.33,
        server_error=0.05,
        reset=0.05,
        cut=0.05,
        garbled=0.03,
        delay=0.05,
        delay_seconds=0.5,
        operations=frozenset({"DescribeLogStreams", "GetLogEvents", "FilterLogEvents"}),
    )
    conf = setup.config(via.service("many,few").replace(via.url, faulty.url))
    runs = until_clean(setup, conf, via.flags())
    logs = via.client()
    later = now_ms() - 1000
    for group, streams in (("many", 15), ("few", 4)):
        for n in range(streams):
            extra = distinct(f"{group}-late-{n}", 20)
            put(logs, group, f"s{n:02d}", extra, later)
            expected |= set(extra)
    via.settled()
    runs += until_clean(setup, conf, via.flags())
    lost, repeated = setup.sink.lost_and_repeated(expected)
    faults = dict(faulty.stats.faults)
    record(
        via,
        "throttling and failures",
        "the proxy answers 33% of read calls ThrottlingException, 5% HTTP 503, resets 5% of "
        "connections, cuts 5% of answers halfway through their body, garbles 3% (a 200 that "
        "is not JSON), delays 5% by 0.5 s; two rounds over 19 streams, each run again "
        "until a run has no failure",
        f"{sum(faulty.stats.calls.values())} calls, faults {json.dumps(faults, sort_keys=True)}, "
        f"{runs} runs",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert faults.get("throttle", 0) >= 5


def test_sigterm_mid_run_commits_and_repeats_nothing(setup: Setup, via: Via) -> None:
    """SIGTERM mid-collection exits 0 in seconds; the next run sends the rest, no repeat."""
    expected = seed_many(setup, via, streams=6, per_stream=10_000)
    via.settled()
    conf = setup.config(via.service("app"), interval="1h")
    proc = start_daemon(setup, conf, subprocess.PIPE, *via.flags())
    setup.sink.wait_for(1)
    asked = time.monotonic()
    err = stop(proc)
    took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert took < 5
    before = len(setup.sink.received)
    assert setup.once(conf, *via.flags()).returncode == 0
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record(
        via,
        "SIGTERM mid-run",
        "SIGTERM as the first of 60,000 events arrive; then a second run",
        f"exit 0 in {took:.1f} s with {before:,} events sent; the rest came next run",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_bad_input_never_stops_collection(setup: Setup, via: Via) -> None:
    """Huge, multi-line, NUL, emoji, non-ASCII and lone-surrogate messages all go out."""
    logs = via.client()
    huge = "x" * (1024 * 1024 - 26)  # CloudWatch counts 26 bytes of overhead per event
    odd = [
        "line one\nline two\r\nline three",
        "nul\x00inside",
        "emoji 🔥🛡️ and ünïcödé ✓ 中文",
        json.dumps({"broken": "\ud83d alone"}),
        huge,
        "after",
    ]
    first = seed(logs, "app", {"weird": odd})
    via.settled()
    result = setup.once(setup.config(via.service("app")), *via.flags())
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(len(odd))
    got = setup.sink.received
    header = b"1:Wazuh-AWS:"
    assert got[0] == header + odd[0].encode()
    assert got[1] == header + b"nul\x00inside"
    assert got[2] == header + odd[2].encode()
    assert json.loads(got[3][len(header) :]) == {"broken": "\ud83d alone"}
    assert len(got[4]) == 65_535
    assert got[4] == (header + huge.encode())[:65_535]
    assert got[5] == header + b"after"
    warning = next(line for line in result.stderr.splitlines() if "truncated" in line)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((first + 4) / 1000))
    assert "app" in warning
    assert "weird" in warning
    assert stamp in warning
    record(
        via,
        "bad input",
        "messages with newlines, NUL, emoji, other non-ASCII text, an unpaired UTF-16 "
        "surrogate through the JSON API, and a 1 MB event",
        "all sent in order; the large one cut to 65,535 bytes with a warning naming group, "
        "stream and time",
        lost=6 - len(got),
        repeated=0,
    )


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "newer"],
)
def test_bad_state_file_is_moved_aside(setup: Setup, via: Via, damage: str) -> None:
    """A damaged or newer state file is moved aside; collection restarts at only_logs_after."""
    logs = via.client()
    day_ms = 86_400_000
    old_ts = now_ms() - 3 * day_ms
    new_ts = now_ms() - 60_000
    logs.create_log_group(logGroupName="app")
    logs.create_log_stream(logGroupName="app", logStreamName="s")
    logs.put_log_events(
        logGroupName="app",
        logStreamName="s",
        logEvents=[
            {"timestamp": old_ts, "message": "before only_logs_after"},
            {"timestamp": new_ts, "message": "after only_logs_after"},
        ],
    )
    via.settled()
    ola = time.strftime("%Y-%m-%d", time.gmtime((now_ms() - day_ms) / 1000))
    conf = setup.config(via.service("app", only_logs_after=ola))
    assert setup.once(conf, *via.flags()).returncode == 0
    state = Path(setup.state)
    db = sqlite3.connect(state)
    if damage == "newer":
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    if damage == "truncated":
        data = state.read_bytes()
        state.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        state.write_bytes(os.urandom(8192))
    for suffix in ("-wal", "-shm"):
        Path(str(state) + suffix).unlink(missing_ok=True)
    result = setup.once(conf, *via.flags())
    assert result.returncode == 0, result.stderr
    assert "moved aside" in result.stderr
    assert list(state.parent.glob("state.db.unusable-*"))
    got = setup.sink.messages()
    assert got == ["after only_logs_after", "after only_logs_after"]
    if damage == "garbage":
        lost, repeated = setup.sink.lost_and_repeated({"after only_logs_after"})
        record(
            via,
            "bad state file",
            "state file truncated, overwritten with random bytes, or of a newer schema",
            "moved aside with an error; collection restarted from only_logs_after: the event "
            "before it was not resent, the one after it was sent again (the lost state held it)",
            lost=lost,
            repeated=repeated,
        )


def test_session_tokens_and_secrets_never_logged(setup: Setup, via: Via) -> None:
    """An assumed role's session token and secret never show up, even at debug level."""
    seed(via.client(), "app", {"s": ["x"]})
    via.settled()
    conf = setup.config(via.service("app", iam_role_arn="arn:aws:iam::123456789012:role/r"))
    result = setup.once(conf, "--log-level", "debug", *via.flags())
    assert result.returncode == 0, result.stderr
    assert setup.sink.messages() == ["x"]
    assert "FQoGZXIvYXdzEBYaD" not in result.stderr  # moto's session token prefix
    assert "SessionToken" not in result.stderr


def test_readable_secret_key_config_warns(setup: Setup) -> None:
    """A config holding secret_key that other users can read gets a warning."""
    conf = setup.config(setup.service("app", access_key="AKIAEXAMPLE", secret_key="s3cr3t/KEY"))
    conf.chmod(0o644)
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 0
    assert "other users can read" in result.stderr
    assert "s3cr3t/KEY" not in result.stderr + result.stdout
    conf.chmod(0o640)
    quiet = run_cli("check-config", "--config", str(conf))
    assert "other users can read" not in quiet.stderr


# -- AWS's own behaviours, through the double only -------------------------------------------


@pytest.fixture
def aws(setup: Setup, double: Any) -> Via:
    """The AWS-like double with every behaviour on, seeded."""
    return Via(setup.moto, double(AwsLike.all_on(int(os.environ.get("AWS_WODLE_AWS_SEED", "8")))))


def put_late(logs: Any, now: int) -> tuple[list[str], list[int]]:
    """100 events stamped 1-12 minutes before ``now`` into streams s0-s3, and a twin of
    s0's last on-time event at its very millisecond (a prompt event): the messages and the
    late events' lateness."""
    rng = random.Random(8)
    late: list[str] = []
    latenesses: list[int] = []
    for n in range(4):
        stamps = sorted(now - rng.randint(60_000, 720_000) for _ in range(25))
        messages = [f"late-{n}-{k:02d}" for k in range(25)]
        logs.put_log_events(
            logGroupName="app",
            logStreamName=f"s{n}",
            logEvents=[
                {"timestamp": t, "message": m} for t, m in zip(stamps, messages, strict=True)
            ],
        )
        late += messages
        latenesses += [now - t for t in stamps]
    put(logs, "app", "s0", ["on-time-0:000049-twin"], now - 50 + 49)
    return [*late, "on-time-0:000049-twin"], latenesses


def read_then_put_late(
    setup: Setup, aws: Via, flags: tuple[str, ...]
) -> tuple[Path, set[str], list[str], list[int], float]:
    """200 on-time events in s0-s3, read by a first run with ``flags``, then ``put_late``
    and settled: the configuration, every event expected in the end, the messages put late
    (the twin last), the late ones' lateness, and when the first run began (monotonic)."""
    logs = aws.client()
    now = now_ms()
    on_time = {f"s{n}": distinct(f"on-time-{n}", 50) for n in range(4)}
    seed(logs, "app", on_time, start=now - 50)
    aws.settled()
    conf = setup.config(aws.service("app"))
    began = time.monotonic()
    assert setup.once(conf, *flags).returncode == 0
    late, latenesses = put_late(logs, now)
    aws.settled()
    expected = {m for messages in on_time.values() for m in messages} | set(late)
    return conf, expected, late, latenesses, began


def test_late_events_are_forwarded_once(setup: Setup, aws: Via) -> None:
    """Events put 1-12 minutes behind those already read, and a same-ms twin, with every
    read covering the lookback (--late-every 0): sent by the next run, once."""
    flags = (*aws.flags(), "--late-every", "0")
    conf, expected, late, latenesses, _ = read_then_put_late(setup, aws, flags)
    second = setup.once(conf, *flags)
    assert second.returncode == 0, second.stderr
    third = setup.once(conf, *flags)  # nothing new: nothing sent again
    assert third.returncode == 0, third.stderr
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record(
        aws,
        "late events",
        "after a stream was read, 100 events put with timestamps 1 to 12 minutes older than "
        "those read, and a twin of the last event read at its very millisecond; two more "
        "runs, each reading the whole lookback (--late-every 0)",
        f"{len(late) - 1 - lost} of {len(late) - 1} late events sent (lateness "
        f"{min(latenesses) // 60_000}-{max(latenesses) // 60_000} min, within --lookback 15m)",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_late_events_wait_for_the_sweep_and_are_forwarded_once(setup: Setup, aws: Via) -> None:
    """With reads split by lateness (--late-every 45s): the next run sends the prompt twin
    but not the late events; the sweep, once due, sends them; nothing is sent twice."""
    flags = (*aws.flags(), "--late-every", "45s")
    conf, expected, late, latenesses, began = read_then_put_late(setup, aws, flags)
    second = setup.once(conf, *flags)  # some 10 s on: a read of prompt events only
    assert second.returncode == 0, second.stderr
    # A sweep is due once the late fence is late_every behind, less half a read's step.
    assert time.monotonic() - began < 30, "too slow to see the read between sweeps"
    between = setup.sink.messages()
    assert "on-time-0:000049-twin" in between
    assert not set(late[:-1]) & set(between), "a late event was sent before the sweep"
    time.sleep(max(0.0, began + 50 - time.monotonic()))
    third = setup.once(conf, *flags)  # the sweep
    assert third.returncode == 0, third.stderr
    fourth = setup.once(conf, *flags)  # nothing new: nothing sent again
    assert fourth.returncode == 0, fourth.stderr
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record(
        aws,
        "late events, reads split by lateness",
        "as above with --late-every 45s: the run some 10 s later reads only the last moments; "
        "the sweep 50 s after the first run reads the lookback; one more run",
        f"the twin sent by the run between sweeps, the {len(late) - 1} late events "
        f"(lateness {min(latenesses) // 60_000}-{max(latenesses) // 60_000} min) by the sweep",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_read_after_write_delay(setup: Setup, aws: Via) -> None:
    """Puts readable 0.5-5 s after acceptance, read every 3 s: each event forwarded once."""
    logs = aws.client()
    seed(logs, "app", {f"s{n}": [] for n in range(3)})
    conf = setup.config(aws.service("app"), interval="3s")
    proc = start_daemon(setup, conf, subprocess.PIPE, *aws.flags())
    expected: set[str] = set()
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < 20:
        messages = [f"w{n:04d}-{k}" for k in range(5)]
        put(logs, "app", f"s{n % 3}", messages, now_ms())
        expected |= set(messages)
        n += 1
        time.sleep(0.1)
    assert aws.proxy is not None
    aws.settled()
    deadline = time.monotonic() + 30
    while not set(setup.sink.messages()) >= expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(6)  # two more cycles: any repeat shows
    err = stop(proc)
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    shaped = aws.proxy.stats.shaped
    record(
        aws,
        "read-after-write delay",
        "puts readable 0.5-5 s after AWS accepted them (ingestion time at acceptance), "
        "written for 20 s while the daemon reads every 3 s with --settle 6s",
        f"{shaped['reads with puts pending']} of "
        f"{aws.proxy.stats.calls['FilterLogEvents'] + aws.proxy.stats.calls['GetLogEvents']} "
        f"reads ran while accepted puts were not yet readable",
        lost=lost,
        repeated=repeated,
    )
    assert shaped["reads with puts pending"] > 0
    assert (lost, repeated) == (0, 0)


def test_1mb_pages_and_short_pages(setup: Setup, aws: Via) -> None:
    """200 KB messages and a burst over 1 MB, short and empty pages: every event sent once."""
    logs = aws.client()
    start = now_ms() - 60_000
    small = {f"s{n}": distinct(f"small-{n}", 1_000) for n in range(3)}
    seed(logs, "app", small, start=start)
    aws.settled()
    conf = setup.config(aws.service("app"))
    assert setup.once(conf, *aws.flags()).returncode == 0
    big = [f"big{n:02d} " + "b" * 200_000 for n in range(12)]
    burst = [f"burst{n:02d} " + "u" * 20_000 for n in range(80)]
    after = now_ms()
    for i in range(0, 12, 4):
        put(logs, "app", "s0", big[i : i + 4], after + i)
    for i in range(0, 80, 40):
        put(logs, "app", "s1", burst[i : i + 40], after + 20, step=0)
    put(logs, "app", "s2", distinct("tail", 10), after + 30)
    aws.settled()
    result = setup.once(conf, *aws.flags())
    assert result.returncode == 0, result.stderr
    assert aws.proxy is not None
    shaped = aws.proxy.stats.shaped
    header = b"1:Wazuh-AWS:"
    got = [d[len(header) :].split(b" ", 1)[0].decode() for d in setup.sink.received]
    expected = {m.split(" ", 1)[0] for m in (*big, *burst)} | set(distinct("tail", 10))
    expected |= {m for messages in small.values() for m in messages}
    lost, repeated = len(expected - set(got)), len(got) - len(set(got))
    record(
        aws,
        "1 MB pages and short pages",
        "into streams already read: 12 messages of 200 KB and an 80-event burst of 20 KB in "
        "one millisecond; pages capped at 1 MB, a third cut short or empty mid-result",
        f"{shaped['pages capped']} pages capped, {shaped['pages cut short']} cut short, "
        f"{shaped['pages empty'] + shaped['empty last pages']} empty, over two runs",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert shaped["pages capped"] >= 3


def test_stale_stream_fields(setup: Setup, aws: Via) -> None:
    """Events put after a read arrive at the next run despite 10-minute-stale stream fields."""
    logs = aws.client()
    seed(logs, "app", {f"s{n}": distinct(f"first-{n}", 20) for n in range(3)})
    aws.settled()
    conf = setup.config(aws.service("app"))
    assert setup.once(conf, *aws.flags()).returncode == 0
    before = {s["logStreamName"]: s.get("lastIngestionTime") for s in describe(logs)}
    newer = {f"s{n}": distinct(f"second-{n}", 20) for n in (0, 1, 2, 3)}
    seed(logs, "app", newer, start=now_ms())
    aws.settled()
    assert aws.proxy is not None
    result = setup.once(conf, *aws.flags())
    assert result.returncode == 0, result.stderr
    after = {s["logStreamName"]: s.get("lastIngestionTime") for s in describe(logs)}
    assert {k: after[k] for k in before} == before  # still stale at the second run
    fresh = {s["logStreamName"]: s["lastIngestionTime"] for s in describe(setup.moto.client())}
    assert all(fresh[k] > (v or 0) for k, v in before.items())  # while moto moved on
    expected = {m for n in range(3) for m in distinct(f"first-{n}", 20)}
    expected |= {m for messages in newer.values() for m in messages}
    lost, repeated = setup.sink.lost_and_repeated(expected)
    by_collector = aws.proxy.stats.calls["DescribeLogStreams"] - 2  # this test made two
    record(
        aws,
        "stale stream fields",
        "DescribeLogStreams serves each stream's three time fields from a snapshot refreshed "
        "every 10 minutes; 80 events put after a run into 3 read streams and a new one",
        f"all sent by the next run, the fields still stale ({by_collector} DescribeLogStreams "
        "calls by the collector)",
        lost=lost,
        repeated=repeated,
    )
    assert (lost, repeated) == (0, 0)


def describe(logs: Any) -> list[dict[str, Any]]:
    return list(logs.describe_log_streams(logGroupName="app")["logStreams"])
