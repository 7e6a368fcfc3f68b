"""Which groups and streams are read, and how events are sent, end to end on moto: prefix
entries, stream filters and the envelope, set in ossec.conf and the settings file."""

from __future__ import annotations

import json
import math
import os
import time

from awsproxy import AwsProxy
from conftest import Setup, put, seed

HEADER = b"1:Wazuh-AWS:"


def settings(setup: Setup, text: str) -> str:
    path = setup.folder / "aws-wodle.toml"
    path.write_text(text)
    return str(path)


def test_a_prefix_reads_its_groups_finds_new_ones_and_ends_gone_ones_cleanly(
    setup: Setup,
) -> None:
    """/aws/lambda/* reads every group with that prefix and no other; a group created later
    is found by the next listing and sent whole; a deleted group ends with one line and no
    failure, run after run."""
    logs = setup.moto.client()
    seed(logs, "/aws/lambda/a", {"s": ["a0"]})
    seed(logs, "/aws/lambda/b", {"s": ["b0"]})
    seed(logs, "/aws/other", {"s": ["other"]})
    conf = setup.config(setup.service("/aws/lambda/*"))
    flags = ("--settings", settings(setup, "discover_every = 0\n"))
    assert setup.once(conf, *flags).returncode == 0
    seed(logs, "/aws/lambda/c", {"s": ["c0", "c1"]})
    assert setup.once(conf, *flags).returncode == 0
    setup.sink.wait_for(4)
    assert sorted(setup.sink.messages()) == ["a0", "b0", "c0", "c1"]
    logs.delete_log_group(logGroupName="/aws/lambda/b")
    put(logs, "/aws/lambda/a", "s", ["a1"], int(time.time() * 1000))
    first = setup.once(conf, *flags)
    second = setup.once(conf, *flags)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "/aws/lambda/b is gone; no longer read" in first.stderr
    assert "/aws/lambda/b" not in second.stderr
    setup.sink.wait_for(5)
    assert sorted(setup.sink.messages()) == ["a0", "a1", "b0", "c0", "c1"]


def test_stream_filters_send_only_the_streams_kept(setup: Setup) -> None:
    """include_streams and exclude_streams in a [[group]]: moto ignores FilterLogEvents'
    logStreamNamePrefix, so the engine's own filter is what keeps other streams out."""
    logs = setup.moto.client()
    seed(logs, "app", {"web-1": ["w1"], "web-internal": ["wi"], "db-1": ["d1"]})
    seed(logs, "solo", {"web-2": ["w2"], "api-1": ["a1"]})
    text = (
        '[[group]]\nmatch = "app"\ninclude_streams = ["web-"]\nexclude_streams = ["web-int"]\n'
        '[[group]]\nmatch = "solo"\ninclude_streams = ["web-"]\n'
    )
    conf = setup.config(setup.service("app, solo"))
    result = setup.once(conf, "--settings", settings(setup, text))
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["w1", "w2"]


def test_the_envelope_on_the_wire_and_the_raw_default_beside_it(setup: Setup) -> None:
    """envelope = true for one group: its datagrams are the header and the JSON object, a
    message too long is cut inside it and stays JSON; the other group's stay byte-exact."""
    logs = setup.moto.client()
    seed(logs, "enveloped", {"s": ['{"a": 1}', "é" * 40_000]})
    seed(logs, "raw", {"s": ['{"a": 1}']})
    conf = setup.config(setup.service("enveloped, raw"))
    flags = ("--settings", settings(setup, '[[group]]\nmatch = "env*"\nenvelope = true\n'))
    result = setup.once(conf, *flags)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(3)
    raw = [d for d in setup.sink.received if not d.startswith(HEADER + b'{"integration"')]
    assert raw == [HEADER + b'{"a": 1}']
    small, big = (json.loads(d[len(HEADER) :]) for d in setup.sink.received if d not in raw)
    assert small["aws"]["message"] == '{"a": 1}'
    info = small["aws"]["log_info"]
    assert (info["log_group"], info["log_stream"]) == ("enveloped", "s")
    assert (info["aws_account_id"], info["aws_region"]) == ("123456789012", "us-east-1")
    assert info["timestamp"].endswith("Z")
    assert info["event_id"]
    assert big["aws"]["log_info"]["truncated"] is True
    assert big["aws"]["log_info"]["message_bytes"] == 80_000
    assert "é" * 100 in big["aws"]["message"]


def test_prefix_listing_cost(setup: Setup) -> None:
    """A prefix over N groups (AWS_WODLE_PREFIX_GROUPS, default 120) costs ceil(N / 50)
    DescribeLogGroups calls when listed, and none on a cycle before discover_every (10
    minutes by default) has passed; prints the measured figures."""
    count = int(os.environ.get("AWS_WODLE_PREFIX_GROUPS", "120"))
    logs = setup.moto.client()
    for i in range(count):
        logs.create_log_group(logGroupName=f"/aws/lambda/f{i:05d}")
    started = time.monotonic()
    pages = logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="/aws/lambda/", limit=50
    )
    assert sum(len(page["logGroups"]) for page in pages) == count
    alone = time.monotonic() - started
    proxy = AwsProxy(setup.moto.url)
    try:
        conf = setup.config(setup.service("/aws/lambda/*").replace(setup.moto.url, proxy.url))
        rates = ("--rate", "FilterLogEvents=1000")
        started = time.monotonic()
        assert setup.once(conf, *rates).returncode == 0
        first = time.monotonic() - started
        listing = proxy.stats.calls["DescribeLogGroups"]
        proxy.stats.calls.clear()
        started = time.monotonic()
        assert setup.once(conf, *rates).returncode == 0
        second = time.monotonic() - started
        again = dict(proxy.stats.calls)
    finally:
        proxy.stop()
    assert listing == math.ceil(count / 50)
    assert again.get("DescribeLogGroups", 0) == 0
    assert again["FilterLogEvents"] == count
    print(
        f"\n{count} groups under a prefix: listing {listing} DescribeLogGroups calls "
        f"({alone:.2f} s on moto); "
        f"first run {first:.1f} s, next run {second:.1f} s with 0 DescribeLogGroups and "
        f"{again['FilterLogEvents']} FilterLogEvents"
    )
