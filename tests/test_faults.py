"""Faults injected for real: kill -9, a manager that goes away, throttling, bad input, bad state."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from awsproxy import AwsProxy, Fault, random_faults
from conftest import (
    Setup,
    cli_env,
    now_ms,
    put,
    record_survival,
    run_cli,
    seed,
    start_daemon,
)


def distinct(stream: str, count: int) -> list[str]:
    return [f"{stream}:{i:06d}" for i in range(count)]


def seed_many(setup: Setup, streams: int, per_stream: int, group: str = "app") -> set[str]:
    logs = setup.moto.client()
    start = now_ms() - 3_600_000
    content = {f"s{n:02d}": distinct(f"{group}/s{n:02d}", per_stream) for n in range(streams)}
    seed(logs, group, content, start=start)
    return {m for messages in content.values() for m in messages}


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err or ""


def test_kill9_at_random_moments_loses_nothing(setup: Setup) -> None:
    """SIGKILL at 10 random moments: every event arrives; repeats are at most a page a kill."""
    expected = seed_many(setup, streams=20, per_stream=5_000)
    conf = setup.config(setup.service("app"), interval="1h")
    seed_value = int(os.environ.get("AWS_WODLE_KILL_SEED", str(time.time_ns())))
    rng = random.Random(seed_value)
    kills = 0
    for _ in range(10):
        before = len(setup.sink.received)
        proc = start_daemon(setup, conf, subprocess.DEVNULL)
        # Kill while it sends: once this run's first events arrive, at a random moment
        # within the next 0.3 s (a page of 5,000 takes about that long to send).
        setup.sink.wait_for(before + 1, timeout=10)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=10)
        kills += 1
    proc = start_daemon(setup, conf, subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while len(set(setup.sink.received)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop(proc)
    lost, repeated = setup.sink.lost_and_repeated(expected)
    page = 5_000  # each stream fits one GetLogEvents page
    record_survival(
        "kill -9",
        f"100,000 events in 20 streams; SIGKILL at {kills} random moments while sending "
        f"(seed {seed_value}), restart after each",
        f"{repeated:,} repeats over {kills} kills (bound: one page of {page:,} per kill)",
        lost,
        repeated,
    )
    assert lost == 0, f"seed {seed_value}"
    assert repeated <= kills * page, f"seed {seed_value}"


def test_manager_away_at_start(setup: Setup) -> None:
    """No queue socket at start: the daemon waits, logs once, and sends all when it appears."""
    expected = seed_many(setup, streams=3, per_stream=200)
    setup.sink.unbind()
    conf = setup.config(setup.service("app"))
    proc = subprocess.Popen([*_once(setup, conf)], env=cli_env(), stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    assert proc.poll() is None, "the daemon must wait for the manager"
    bound_at = time.monotonic()
    setup.sink.bind()
    _, err = proc.communicate(timeout=60)
    resumed_after = time.monotonic() - bound_at
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    outages = [line for line in err.splitlines() if "unavailable" in line]
    record_survival(
        "manager away at start",
        "no queue socket for 2 s, then bound (ENOENT)",
        f"{len(outages)} log line for the outage; all sent {resumed_after:.1f} s after bind",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert len(outages) == 1
    assert "ENOENT" in outages[0]


def _once(setup: Setup, conf: Path) -> list[str]:
    import sys

    return [
        sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(conf),
        "--queue", setup.sink.path, "--state", setup.state,
    ]  # fmt: skip


def test_manager_restarts_mid_run(setup: Setup) -> None:
    """The queue goes away mid-run (refused, then missing) and comes back: nothing lost."""
    expected = seed_many(setup, streams=4, per_stream=15_000)
    conf = setup.config(setup.service("app"))
    proc = subprocess.Popen(_once(setup, conf), env=cli_env(), stderr=subprocess.PIPE, text=True)
    setup.sink.wait_for(3_000)
    setup.sink.unbind()
    # A stale socket file (ECONNREFUSED) first, then none at all (ENOENT).
    stale = __import__("socket").socket(__import__("socket").AF_UNIX, 2)
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
    record_survival(
        "manager restarts mid-run",
        "queue socket taken away after 3,000 of 60,000 events: a stale socket file "
        "(ECONNREFUSED) for 1 s, then none (ENOENT) for 1 s, then bound again",
        f"{len(outages)} log line for the outage",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert len(outages) == 1


def test_manager_queue_full(setup: Setup) -> None:
    """A manager that stops reading (full queue) holds the daemon back; nothing is dropped."""
    expected = seed_many(setup, streams=2, per_stream=10_000)
    setup.sink.paused.set()
    conf = setup.config(setup.service("app"))
    proc = subprocess.Popen(_once(setup, conf), env=cli_env(), stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    assert proc.poll() is None
    setup.sink.paused.clear()
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record_survival(
        "manager queue full",
        "the queue socket is not read for 4 s (sends block, then EAGAIN)",
        "the daemon waited, then sent everything",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)


@pytest.fixture
def proxy(setup: Setup) -> Iterator[AwsProxy]:
    server = AwsProxy(setup.moto.url)
    yield server
    server.stop()


def test_throttling_errors_resets_and_delays(setup: Setup, proxy: AwsProxy) -> None:
    """A third of calls throttled, plus 5xx, resets and slow answers: all collected, once,
    over two runs, by FilterLogEvents (many small streams) and GetLogEvents (a few)."""
    expected = seed_many(setup, streams=15, per_stream=100, group="many")
    expected |= seed_many(setup, streams=4, per_stream=2_500, group="few")
    proxy.policy = random_faults(
        7,
        throttle=0.33,
        server_error=0.05,
        reset=0.05,
        delay=0.05,
        delay_seconds=0.5,
        operations=frozenset({"DescribeLogStreams", "GetLogEvents", "FilterLogEvents"}),
    )
    conf = setup.config(setup.service("many,few").replace(setup.moto.url, proxy.url))
    first = setup.once(conf)
    assert first.returncode == 0, first.stderr
    logs = setup.moto.client()
    later = now_ms() - 1000
    for group, streams in (("many", 15), ("few", 4)):
        for n in range(streams):
            extra = distinct(f"{group}-late-{n}", 20)
            put(logs, group, f"s{n:02d}", extra, later)
            expected |= set(extra)
    second = setup.once(conf)
    assert second.returncode == 0, second.stderr
    lost, repeated = setup.sink.lost_and_repeated(expected)
    faults = dict(proxy.stats.faults)
    record_survival(
        "throttling and failures",
        "a proxy of ours before moto answers 33% of calls ThrottlingException, 5% HTTP 503, "
        "resets 5% of connections, delays 5% by 0.5 s; two runs over 19 streams",
        f"{sum(proxy.stats.calls.values())} calls, faults {json.dumps(faults, sort_keys=True)}",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)
    assert faults.get("throttle", 0) >= 5


def test_refused_token_falls_back_to_timestamps(setup: Setup, proxy: AwsProxy) -> None:
    """A stored token that AWS refuses: resume from the stored timestamp, no loss, no repeat."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": distinct("a", 50)})
    conf = setup.config(setup.service("app").replace(setup.moto.url, proxy.url))
    assert setup.once(conf).returncode == 0
    put(logs, "app", "s", ["a:000049-twin", *distinct("b", 30)], first + 49)
    proxy.policy = lambda _op, _request: Fault("reject-token")
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    assert "token refused" in result.stderr
    expected = {*distinct("a", 50), "a:000049-twin", *distinct("b", 30)}
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record_survival(
        "token refused",
        "the proxy answers InvalidParameterException to every GetLogEvents with a token",
        "resumed from the stored timestamp, skipping the events sent at that millisecond",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_token_older_than_its_lifetime_is_not_used(setup: Setup) -> None:
    """A position saved over 23 h ago resumes by timestamp, with the boundary de-duplicated."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": distinct("a", 40)})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    with sqlite3.connect(setup.state) as db:
        db.execute("UPDATE streams SET token_saved = ?", (time.time() - 25 * 3600,))
    put(logs, "app", "s", ["a:000039-twin", *distinct("c", 20)], first + 39)
    assert setup.once(conf).returncode == 0
    expected = {*distinct("a", 40), "a:000039-twin", *distinct("c", 20)}
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record_survival(
        "token past 24 h",
        "the stored position's save time set 25 h back in the SQLite file",
        "resumed from the stored timestamp, skipping the events sent at that millisecond",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_sigterm_mid_run_commits_and_repeats_nothing(setup: Setup) -> None:
    """SIGTERM mid-collection: the page in hand is committed, exit 0 within seconds,
    and the next run sends the rest without a single repeat."""
    expected = seed_many(setup, streams=6, per_stream=10_000)
    conf = setup.config(setup.service("app"), interval="1h")
    proc = start_daemon(setup, conf)
    setup.sink.wait_for(1)
    asked = time.monotonic()
    err = stop(proc)
    took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert took < 5
    before = len(setup.sink.received)
    assert setup.once(conf).returncode == 0
    lost, repeated = setup.sink.lost_and_repeated(expected)
    record_survival(
        "SIGTERM mid-run",
        "SIGTERM as the first of 60,000 events arrive; then a second run",
        f"exit 0 in {took:.1f} s with {before:,} events sent; the rest came next run",
        lost,
        repeated,
    )
    assert (lost, repeated) == (0, 0)


def test_bad_input_never_stops_collection(setup: Setup) -> None:
    """Huge, multi-line, NUL, emoji, non-ASCII and lone-surrogate messages all go out."""
    logs = setup.moto.client()
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
    result = setup.once(setup.config(setup.service("app")))
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
    record_survival(
        "bad input",
        "messages with newlines, NUL, emoji, other non-ASCII text, an unpaired UTF-16 "
        "surrogate through the JSON API, and a 1 MB event",
        "all sent in order; the large one cut to 65,535 bytes with a warning naming group, "
        "stream and time",
        6 - len(got),
        0,
    )


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "newer"],
)
def test_bad_state_file_is_moved_aside(setup: Setup, damage: str) -> None:
    """A truncated, corrupt or newer state file is moved aside with a clear error, and
    collection restarts from only_logs_after, not from the beginning of time."""
    logs = setup.moto.client()
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
    ola = time.strftime("%Y-%m-%d", time.gmtime((now_ms() - day_ms) / 1000))
    conf = setup.config(setup.service("app", only_logs_after=ola))
    assert setup.once(conf).returncode == 0
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
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    assert "moved aside" in result.stderr
    assert list(state.parent.glob("state.db.unusable-*"))
    got = setup.sink.messages()
    assert got == ["after only_logs_after", "after only_logs_after"]
    if damage == "garbage":
        lost, repeated = setup.sink.lost_and_repeated({"after only_logs_after"})
        record_survival(
            "bad state file",
            "state file truncated, overwritten with random bytes, or of a newer schema",
            "moved aside with an error; collection restarted from only_logs_after: the event "
            "before it was not resent, the one after it was sent again (the lost state held it)",
            lost,
            repeated,
        )


def test_session_tokens_and_secrets_never_logged(setup: Setup) -> None:
    """An assumed role's session token and secret never show up, even at debug level."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app", iam_role_arn="arn:aws:iam::123456789012:role/r"))
    result = setup.once(conf, "--log-level", "debug")
    assert result.returncode == 0, result.stderr
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
