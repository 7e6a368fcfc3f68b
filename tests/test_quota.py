"""API calls counted by a proxy of ours: a cycle costs what changed, not the stream count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from awsproxy import AwsProxy
from conftest import Setup, now_ms, put, seed


@pytest.fixture
def proxy(setup: Setup) -> Iterator[AwsProxy]:
    server = AwsProxy(setup.moto.url)
    yield server
    server.stop()


def through(setup: Setup, proxy: AwsProxy, groups: str = "app", **options: str) -> object:
    return setup.config(setup.service(groups, **options).replace(setup.moto.url, proxy.url))


def run_counted(setup: Setup, proxy: AwsProxy, conf: object, *extra: str) -> dict[str, int]:
    before = dict(proxy.stats.calls)
    result = setup.once(conf, *extra)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return {k: v - before.get(k, 0) for k, v in proxy.stats.calls.items() if v - before.get(k, 0)}


def test_many_small_streams_cost_one_call(setup: Setup, proxy: AwsProxy) -> None:
    """120 new streams of 5 events: one FilterLogEvents over the group, no listing, no call
    per stream."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i:03d}": [f"s{i:03d}-{j}" for j in range(5)] for i in range(120)})
    calls = run_counted(setup, proxy, through(setup, proxy))
    setup.sink.wait_for(600)
    assert len(set(setup.sink.messages())) == 600
    assert len(setup.sink.received) == 600
    assert calls == {"GetCallerIdentity": 1, "FilterLogEvents": 1}


def test_nothing_new_costs_one_call(setup: Setup, proxy: AwsProxy) -> None:
    """A run with nothing new costs one FilterLogEvents call; STS is asked once per
    credentials lifetime, not every run."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i:03d}": [f"m{i}"] for i in range(60)})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    calls = run_counted(setup, proxy, conf)
    assert calls == {"FilterLogEvents": 1}
    assert len(setup.sink.received) == 60


def test_only_what_changed_is_sent(setup: Setup, proxy: AwsProxy) -> None:
    """New events in 2 of 30 streams: one call, and exactly those events."""
    logs = setup.moto.client()
    first = seed(logs, "app", {f"s{i:02d}": [f"old{i}"] for i in range(30)})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    put(logs, "app", "s03", ["new3"], first + 10)
    put(logs, "app", "s17", ["new17a", "new17b"], first + 10)
    calls = run_counted(setup, proxy, conf)
    assert calls == {"FilterLogEvents": 1}
    setup.sink.wait_for(33)
    assert sorted(setup.sink.messages()[30:]) == ["new17a", "new17b", "new3"]


def test_busy_stream_reads_one_call_per_page(setup: Setup, proxy: AwsProxy) -> None:
    """25,000 events in one stream: three 10,000-event pages, no empty call at the end."""
    logs = setup.moto.client()
    seed(logs, "app", {"busy": [f"e{i}" for i in range(25_000)]})
    calls = run_counted(setup, proxy, through(setup, proxy))
    assert calls["FilterLogEvents"] == 3
    setup.sink.wait_for(25_000)
    assert len(setup.sink.received) == 25_000


def test_events_in_the_same_millisecond_after_a_read_are_sent_once(
    setup: Setup, proxy: AwsProxy
) -> None:
    """After a read, new events in the same millisecond as the last ones are sent once."""
    logs = setup.moto.client()
    first = now_ms() - 60_000
    seed(logs, "app", {f"s{i:02d}": [f"a{i}"] for i in range(12)}, start=first)
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf)
    for i in range(12):
        put(logs, "app", f"s{i:02d}", [f"twin{i}", f"b{i}"], first)
    calls = run_counted(setup, proxy, conf)
    assert calls == {"FilterLogEvents": 1}
    setup.sink.wait_for(36)
    got = setup.sink.messages()
    assert len(got) == 36
    assert len(set(got)) == 36


def test_lookback_zero_reads_nothing_old(setup: Setup, proxy: AwsProxy) -> None:
    """--lookback 0 reads only from the newest event sent: a late event older than it is
    not sent (the documented cost of turning the lookback off), a newer one is."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["a", "b"]})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf, "--lookback", "0")
    # The read after a first collection covers its whole range once more (README, "How it
    # spends API calls"); the lookback's limit holds from the read after that.
    run_counted(setup, proxy, conf, "--lookback", "0")
    put(logs, "app", "s", ["too-late"], first - 1_000)
    put(logs, "app", "s", ["newer"], first + 10)
    assert run_counted(setup, proxy, conf, "--lookback", "0") == {"FilterLogEvents": 1}
    setup.sink.wait_for(3)
    assert setup.sink.messages() == ["a", "b", "newer"]


def test_settle_margin_holds_back_fresh_events_until_a_later_run(
    setup: Setup, proxy: AwsProxy
) -> None:
    """Events ingested less than --settle before a read wait for a later read: none lost."""
    logs = setup.moto.client()
    seed(logs, "app", {"s": ["fresh"]})
    conf = through(setup, proxy)
    run_counted(setup, proxy, conf, "--settle", "1h")
    assert setup.sink.received == []
    run_counted(setup, proxy, conf, "--settle", "0s")
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["fresh"]
