"""API calls counted by a proxy of ours: only what changed is read, small streams together."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from awsproxy import AwsProxy
from conftest import Setup, now_ms, put, seed


@pytest.fixture
def proxy(setup: Setup) -> Iterator[AwsProxy]:
    server = AwsProxy(setup.moto.url)
    yield server
    server.stop()


def through(setup: Setup, proxy: AwsProxy, groups: str = "app") -> object:
    return setup.config(setup.service(groups).replace(setup.moto.url, proxy.url))


def run_counted(setup: Setup, proxy: AwsProxy, conf: object) -> dict[str, int]:
    before = dict(proxy.stats.calls)
    result = setup.once(conf)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return {k: v - before.get(k, 0) for k, v in proxy.stats.calls.items() if v - before.get(k, 0)}


def test_many_small_streams_are_read_together(setup: Setup, proxy: AwsProxy) -> None:
    """120 new streams of 5 events: a few FilterLogEvents calls, no call per stream."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i:03d}": [f"s{i:03d}-{j}" for j in range(5)] for i in range(120)})
    calls = run_counted(setup, proxy, through(setup, proxy))
    setup.sink.wait_for(600)
    assert len(set(setup.sink.messages())) == 600
    assert len(setup.sink.received) == 600
    assert calls.get("GetLogEvents", 0) == 0
    assert calls["FilterLogEvents"] == 2  # 100 streams, then 20
    assert calls["DescribeLogStreams"] == 3


def test_nothing_new_costs_only_the_listing(setup: Setup, proxy: AwsProxy) -> None:
    """A second run with nothing new makes no read at all: the listing and STS only."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i:03d}": [f"m{i}"] for i in range(60)})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    calls = run_counted(setup, proxy, conf)
    assert calls == {"GetCallerIdentity": 1, "DescribeLogStreams": 2}
    assert len(setup.sink.received) == 60


def test_only_changed_streams_are_read(setup: Setup, proxy: AwsProxy) -> None:
    """New events in 2 of 30 streams: 2 GetLogEvents calls, and exactly those events."""
    logs = setup.moto.client()
    first = seed(logs, "app", {f"s{i:02d}": [f"old{i}"] for i in range(30)})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    put(logs, "app", "s03", ["new3"], first + 10)
    put(logs, "app", "s17", ["new17a", "new17b"], first + 10)
    calls = run_counted(setup, proxy, conf)
    assert calls.get("GetLogEvents") == 2
    assert "FilterLogEvents" not in calls
    setup.sink.wait_for(33)
    assert sorted(setup.sink.messages()[30:]) == ["new17a", "new17b", "new3"]


def test_busy_stream_reads_one_call_per_page(setup: Setup, proxy: AwsProxy) -> None:
    """25,000 events in one stream: three 10,000-event pages, no empty call at the end."""
    logs = setup.moto.client()
    seed(logs, "app", {"busy": [f"e{i}" for i in range(25_000)]})
    calls = run_counted(setup, proxy, through(setup, proxy))
    assert calls["GetLogEvents"] == 3
    setup.sink.wait_for(25_000)
    assert len(setup.sink.received) == 25_000


def test_every_stream_is_read_within_the_hour(setup: Setup, proxy: AwsProxy) -> None:
    """A stream DescribeLogStreams shows unchanged is still read once its hour is up."""
    logs = setup.moto.client()
    seed(logs, "app", {"a": ["x"], "b": ["y"]})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    with sqlite3.connect(setup.state) as db:
        db.execute("UPDATE streams SET last_read = ? WHERE stream = 'a'", (time.time() - 3700,))
    calls = run_counted(setup, proxy, conf)
    assert calls.get("GetLogEvents") == 1
    assert len(setup.sink.received) == 2


def test_late_small_stream_events_after_filter_are_not_lost(setup: Setup, proxy: AwsProxy) -> None:
    """After a read-together, new events in the same millisecond as the last are sent once."""
    logs = setup.moto.client()
    first = now_ms() - 60_000
    seed(logs, "app", {f"s{i:02d}": [f"a{i}"] for i in range(12)}, start=first)
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    for i in range(12):
        put(logs, "app", f"s{i:02d}", [f"twin{i}", f"b{i}"], first)
    calls = run_counted(setup, proxy, conf)
    assert calls.get("FilterLogEvents") == 1
    setup.sink.wait_for(36)
    got = setup.sink.messages()
    assert len(got) == 36
    assert len(set(got)) == 36


def test_a_full_last_page_is_checked_once_more(setup: Setup, proxy: AwsProxy) -> None:
    """20,000 events: two full pages and no empty call; since a full page does not prove
    the end, the next run reads the stream once more (one call), then not at all."""
    logs = setup.moto.client()
    seed(logs, "app", {"exact": [f"e{i}" for i in range(20_000)]})
    conf = through(setup, proxy)
    assert run_counted(setup, proxy, conf)["GetLogEvents"] == 2
    assert run_counted(setup, proxy, conf).get("GetLogEvents") == 1
    assert "GetLogEvents" not in run_counted(setup, proxy, conf)
    assert len(setup.sink.received) == 20_000
