"""The edges of a full read and of a run, with real processes: events held for the settle
margin by a first collection or a backfill come with the next run (through the AWS-like
double), held events are said, and an interrupted ``run --once`` exits non-zero."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from awsproxy import AwsLike, AwsProxy, Fault
from conftest import Setup, cli_env, now_ms, put, run_cli, seed, service_xml, start_daemon
from test_collect import day

Double = Callable[..., AwsProxy]
HOUR = 3_600_000
# The collector's settle margin through the double: above its longest visibility delay.
SETTLE = AwsLike.all_on().max_visibility + 1.0


def _once(setup: Setup, conf: Path, settle: float) -> subprocess.CompletedProcess[str]:
    result = setup.once(conf, "--settle", f"{settle:g}s")
    assert result.returncode == 0, result.stderr
    return result  # type: ignore[no-any-return]


def _status(setup: Setup) -> dict[str, object]:
    result = run_cli("status", "--json", "--state", setup.state)
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)["groups"]
    assert len(groups) == 1
    return groups[0]  # type: ignore[no-any-return]


def _client(proxy: AwsProxy) -> Any:
    """A CloudWatch Logs client through the double: writers' puts take its delays."""
    return boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=proxy.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n:04d}" for n in range(count)]


def test_held_events_are_said_and_sent_by_the_next_run(setup: Setup) -> None:
    """Five events two hours old put just before ``run --once`` (only_logs_after days
    earlier): the run sends none, says 5 are held (its line and status), and the next run
    sends all five; a third sends nothing again."""
    logs = setup.moto.client()
    conf = setup.config(setup.service("app", only_logs_after=day(now_ms() - 3 * 86_400_000)))
    names = _names("old", 5)
    seed(logs, "app", {"s": names}, start=now_ms() - 2 * HOUR)
    first = _once(setup, conf, 30.0)
    assert "0 events" in first.stderr
    assert "5 events held for the settle margin" in first.stderr, first.stderr
    assert _status(setup)["events_held"] == 5
    text = run_cli("status", "--state", setup.state)
    assert "HELD" in text.stdout
    assert setup.sink.messages() == []
    second = _once(setup, conf, 0.0)
    assert "held" not in second.stderr
    setup.sink.wait_for(5)
    assert _status(setup)["events_held"] == 0
    _once(setup, conf, 0.0)
    time.sleep(0.3)
    assert sorted(setup.sink.messages()) == names


def test_a_first_collection_loses_nothing_put_just_before_it(setup: Setup, double: Double) -> None:
    """Through the AWS-like double (events readable 0.5-5 s after their ingestion): five
    events two hours old and 175 events 15-20 minutes old put two seconds before a first
    ``run --once``, then ``run --once`` twice more once they settled: each sent once."""
    proxy = double(AwsLike.all_on(19))
    logs = _client(proxy)
    conf = setup.config(
        service_xml(proxy.url, "app", only_logs_after=day(now_ms() - 3 * 86_400_000))
    )
    old = _names("old", 5)
    history = _names("history", 175)
    logs.create_log_group(logGroupName="app")
    for stream in ("a", "b"):
        logs.create_log_stream(logGroupName="app", logStreamName=stream)
    put(logs, "app", "a", old, now_ms() - 2 * HOUR)
    put(logs, "app", "b", history, now_ms() - 20 * 60_000, step=1700)
    time.sleep(2)
    _once(setup, conf, SETTLE)
    proxy.wait_settled(SETTLE)
    _once(setup, conf, SETTLE)
    _once(setup, conf, SETTLE)
    time.sleep(0.3)
    lost, repeated = setup.sink.lost_and_repeated(set(old + history))
    assert (lost, repeated) == (0, 0)


def test_a_backfill_loses_nothing_put_while_it_runs(setup: Setup, double: Double) -> None:
    """only_logs_after moved earlier, with events before the former start put long before
    and just before the run (inside the settle margin): the backfill and the two runs after
    it send each once, through the AWS-like double."""
    proxy = double(AwsLike.all_on(23))
    logs = _client(proxy)
    start = now_ms() - 86_400_000
    conf = setup.config(service_xml(proxy.url, "app", only_logs_after=day(start)))
    logs.create_log_group(logGroupName="app")
    for stream in ("a", "b", "c"):
        logs.create_log_stream(logGroupName="app", logStreamName=stream)
    early = _names("early", 20)
    recent = _names("recent", 20)
    put(logs, "app", "a", early, start - 2 * 86_400_000)
    put(logs, "app", "b", recent, now_ms() - 60_000)
    proxy.wait_settled(SETTLE)
    _once(setup, conf, SETTLE)
    setup.sink.wait_for(20)
    assert sorted(setup.sink.messages()) == recent
    meanwhile = _names("meanwhile", 30)
    put(logs, "app", "c", meanwhile, start - 2 * 86_400_000 + 5 * 60_000)
    conf = setup.config(service_xml(proxy.url, "app", only_logs_after=day(start - 4 * 86_400_000)))
    time.sleep(1)
    _once(setup, conf, SETTLE)
    proxy.wait_settled(SETTLE)
    _once(setup, conf, SETTLE)
    _once(setup, conf, SETTLE)
    time.sleep(0.3)
    lost, repeated = setup.sink.lost_and_repeated(set(early + recent + meanwhile))
    assert (lost, repeated) == (0, 0)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_once_exits_non_zero_and_says_how_far(
    setup: Setup, double: Double, sig: signal.Signals
) -> None:
    """A real signal during a large first collection (each page after the first slowed to
    1 s): ``run --once`` exits 128 + the signal's number and says the events it sent and
    the groups left; the next run sends the rest, nothing twice."""
    logs = setup.moto.client()
    expected: set[str] = set()
    for group in ("app", "web"):
        content = {f"s{n}": _names(f"{group}-s{n}", 10_000) for n in range(3)}
        seed(logs, group, content, start=now_ms() - HOUR)
        expected |= {m for ms in content.values() for m in ms}

    def slow(operation: str, body: dict[str, object]) -> Fault | None:
        if operation == "FilterLogEvents" and body.get("nextToken"):
            return Fault("delay", 1.0)
        return None

    proxy = double(AwsLike(), policy=slow)
    conf = setup.config(service_xml(proxy.url, "app,web"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(conf),
         "--queue", setup.sink.path, "--state", setup.state, "--settle", "0s"],
        env=cli_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(setup.sink.received) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert setup.sink.received, "nothing was sent"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    sent = len(setup.sink.messages())
    assert 0 < sent < len(expected)
    assert (
        f"interrupted by {sig.name}: {sent} events sent, 0 groups read to the end, 2 groups left"
        in err
    ), err
    assert "left by a stop request" in err
    _once(setup, conf, 0.0)
    setup.sink.wait_for(len(expected))
    lost, repeated = setup.sink.lost_and_repeated(expected)
    assert (lost, repeated) == (0, 0)


def test_a_daemons_first_read_loses_nothing_put_just_before_it(
    setup: Setup, double: Double
) -> None:
    """The live run of the issue, through the AWS-like double: a history stream of 175
    events 15-20 minutes old put two seconds before the daemon's first read; the daemon
    (every 2 s) sends each once."""
    proxy = double(AwsLike.all_on(31))
    logs = _client(proxy)
    conf = setup.config(
        service_xml(proxy.url, "app", only_logs_after=day(now_ms() - 3 * 86_400_000)),
        interval="2s",
    )
    history = _names("history", 175)
    logs.create_log_group(logGroupName="app")
    logs.create_log_stream(logGroupName="app", logStreamName="h")
    put(logs, "app", "h", history, now_ms() - 20 * 60_000, step=1700)
    time.sleep(2)
    proc = start_daemon(setup, conf, subprocess.PIPE, "--settle", f"{SETTLE:g}s")
    try:
        proxy.wait_settled(SETTLE)
        setup.sink.wait_for(175, timeout=30)
        time.sleep(5)  # two more cycles: nothing must come twice
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert setup.sink.lost_and_repeated(set(history)) == (0, 0), err
