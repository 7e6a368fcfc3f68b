"""The AWS-like double (tests/awsproxy.py): each behaviour alone, against the real moto server."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from awsproxy import EVENT_OVERHEAD, PAGE_BYTES, AwsLike, AwsProxy, Fault
from conftest import MotoServer, now_ms

Double = Callable[..., AwsProxy]


def boto3_client(service: str, url: str, **kw: Any) -> Any:
    kw.setdefault("aws_access_key_id", "testing")
    kw.setdefault("aws_secret_access_key", "testing")
    return boto3.client(service, region_name="us-east-1", endpoint_url=url, **kw)


def client(url: str, **config: Any) -> Any:
    """A CloudWatch Logs client (botocore ``config`` options given)."""
    return boto3_client("logs", url, config=botocore.config.Config(**config) if config else None)


def make_stream(logs: Any, group: str = "g", *streams: str) -> None:
    logs.create_log_group(logGroupName=group)
    for name in streams or ("s",):
        logs.create_log_stream(logGroupName=group, logStreamName=name)


def read_stream(
    logs: Any, group: str, stream: str, *, capped: bool = True, **kw: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every event of a stream by GetLogEvents from its head, to the same token back;
    returns the events and the number of pages (each at most 1 MB when ``capped``)."""
    events: list[dict[str, Any]] = []
    token = None
    pages = 0
    while True:
        args = dict(kw, logGroupName=group, logStreamName=stream, startFromHead=True)
        if token:
            args["nextToken"] = token
        page = logs.get_log_events(**args)
        pages += 1
        assert not capped or page_bytes(page["events"]) <= PAGE_BYTES
        events += page["events"]
        if page["nextForwardToken"] == token:
            return events, pages
        token = page["nextForwardToken"]


def filter_all(
    logs: Any, group: str, *, capped: bool = True, **kw: Any
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every event FilterLogEvents gives, following nextToken until it is missing; returns
    the events and each page's size (each at most 1 MB when ``capped``)."""
    events: list[dict[str, Any]] = []
    sizes: list[int] = []
    token = None
    while True:
        args = dict(kw, logGroupName=group)
        if token:
            args["nextToken"] = token
        page = logs.filter_log_events(**args)
        assert not capped or page_bytes(page["events"]) <= PAGE_BYTES
        events += page["events"]
        sizes.append(len(page["events"]))
        token = page.get("nextToken")
        if not token:
            return events, sizes
        assert len(sizes) < 10_000, "pagination does not end"


def page_bytes(events: list[dict[str, Any]]) -> int:
    return sum(len(e["message"].encode()) + EVENT_OVERHEAD for e in events)


def ids(events: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [(e.get("logStreamName", ""), e["timestamp"], e["message"]) for e in events]


def test_put_is_answered_at_once_and_readable_only_after_the_delay(double: Double) -> None:
    """A put is answered at once, readable only after its delay, ingestionTime its acceptance."""
    proxy = double(AwsLike(visibility=(1.5, 2.0), seed=1))
    logs = client(proxy.url)
    make_stream(logs)
    ts = now_ms() - 5_000
    before = now_ms()
    answer = logs.put_log_events(
        logGroupName="g", logStreamName="s", logEvents=[{"timestamp": ts, "message": "hello"}]
    )
    after = now_ms()
    assert after - before < 500
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(answer["nextSequenceToken"]) == 56
    assert logs.get_log_events(logGroupName="g", logStreamName="s")["events"] == []
    assert logs.filter_log_events(logGroupName="g")["events"] == []
    while not logs.get_log_events(logGroupName="g", logStreamName="s")["events"]:
        assert now_ms() - after < 5_000, "never became readable"
        time.sleep(0.05)
    readable = now_ms()
    assert readable - before >= 1_500
    (event,) = logs.get_log_events(logGroupName="g", logStreamName="s")["events"]
    (filtered,) = logs.filter_log_events(logGroupName="g")["events"]
    assert before <= event["ingestionTime"] <= after
    assert filtered["ingestionTime"] == event["ingestionTime"]
    assert event["ingestionTime"] < readable - 1_000
    assert proxy.pending() == 0
    assert proxy.stats.delivery_errors == []


def test_puts_keep_their_order_per_stream(double: Double) -> None:
    """Batches of one stream, put back to back with random delays, land in put order."""
    proxy = double(AwsLike(visibility=(0.0, 1.0), seed=2))
    logs = client(proxy.url)
    make_stream(logs, "g", "a", "b")
    ts = now_ms() - 1_000
    for n in range(20):
        for stream in ("a", "b"):
            logs.put_log_events(
                logGroupName="g",
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": f"{stream}{n:02d}-{k}"} for k in range(3)],
            )
    assert proxy.wait_delivered(10)
    for stream in ("a", "b"):
        events, _ = read_stream(logs, "g", stream)
        assert [e["message"] for e in events] == [
            f"{stream}{n:02d}-{k}" for n in range(20) for k in range(3)
        ]
        stamps = [e["ingestionTime"] for e in events]
        assert stamps == sorted(stamps)


def test_put_to_a_missing_stream_is_refused_at_once(double: Double) -> None:
    """As on AWS, a put to a stream that does not exist fails in the writer's call."""
    proxy = double(AwsLike(visibility=(1.0, 2.0)))
    logs = client(proxy.url)
    make_stream(logs)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_log_events(
            logGroupName="g",
            logStreamName="nope",
            logEvents=[{"timestamp": now_ms(), "message": "x"}],
        )
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_log_events(
            logGroupName="nogroup",
            logStreamName="s",
            logEvents=[{"timestamp": now_ms(), "message": "x"}],
        )
    assert proxy.pending() == 0


def test_stream_fields_lag_until_refreshed(double: Double, moto: MotoServer) -> None:
    """DescribeLogStreams' time fields stay as first seen until the refresh period passes."""
    proxy = double(AwsLike(stale_fields=2.0))
    logs, direct = client(proxy.url), moto.client()
    make_stream(logs)
    ts = now_ms() - 10_000
    logs.put_log_events(
        logGroupName="g", logStreamName="s", logEvents=[{"timestamp": ts, "message": "1"}]
    )
    fields = ("firstEventTimestamp", "lastEventTimestamp", "lastIngestionTime")

    def described(via: Any) -> dict[str, int]:
        (stream,) = via.describe_log_streams(logGroupName="g")["logStreams"]
        return {f: stream[f] for f in fields if f in stream}

    first = described(logs)
    assert first["lastEventTimestamp"] == ts
    taken = time.monotonic()
    time.sleep(0.01)
    logs.put_log_events(
        logGroupName="g", logStreamName="s", logEvents=[{"timestamp": ts + 5, "message": "2"}]
    )
    fresh = described(direct)
    assert fresh["lastEventTimestamp"] == ts + 5
    assert fresh["lastIngestionTime"] > first["lastIngestionTime"]
    while time.monotonic() - taken < 1.8:
        assert described(logs) == first
        time.sleep(0.2)
    time.sleep(max(0.0, taken + 2.0 - time.monotonic()))
    assert described(logs) == fresh
    assert proxy.stats.shaped["stale stream fields"] >= 1


def test_new_stream_shows_no_fields_until_refreshed(double: Double) -> None:
    """A stream described before its first event shows no time fields until the refresh."""
    proxy = double(AwsLike(stale_fields=1.5))
    logs = client(proxy.url)
    make_stream(logs)
    assert "lastIngestionTime" not in logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    logs.put_log_events(
        logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "1"}]
    )
    assert "lastIngestionTime" not in logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    time.sleep(1.6)
    assert "lastIngestionTime" in logs.describe_log_streams(logGroupName="g")["logStreams"][0]


def big_and_burst(logs: Any, group: str, stream: str, start: int) -> list[str]:
    """12 messages of 200 KB, an 80-event same-millisecond burst of 20 KB each, and 300
    small ones; put in AWS-sized batches (at most 1 MB). Returns the messages in order."""
    big = [f"big{n:02d}-" + "x" * 200_000 for n in range(12)]
    burst = [f"burst{n:02d}-" + "y" * 20_000 for n in range(80)]
    small = [f"small{n:03d}" for n in range(300)]
    batches = [
        *[[(start + n, m) for n, m in enumerate(big[i : i + 4], i)] for i in range(0, 12, 4)],
        *[[(start + 100, m) for m in burst[i : i + 40]] for i in range(0, 80, 40)],
        [(start + 200 + n, m) for n, m in enumerate(small)],
    ]
    for batch in batches:
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": t, "message": m} for t, m in batch],
        )
    return [*big, *burst, *small]


def test_get_pages_hold_at_most_1mb_and_continue_exactly(double: Double, moto: MotoServer) -> None:
    """GetLogEvents pages stay under 1 MB and the tokens give every event once, in order."""
    proxy = double(AwsLike(page_cap=True))
    make_stream(moto.client())
    messages = big_and_burst(moto.client(), "g", "s", now_ms() - 60_000)
    events, pages = read_stream(client(proxy.url), "g", "s")
    assert [e["message"] for e in events] == messages
    total = page_bytes(events)
    assert pages >= total // PAGE_BYTES + 1 > 3
    direct, direct_pages = read_stream(moto.client(), "g", "s", capped=False)
    assert direct_pages <= 2  # moto itself gives it all in one page (and the closing one)
    assert [e["message"] for e in direct] == messages
    assert proxy.stats.shaped["pages capped"] >= 3
    # With a limit and a start time too.
    tail, _ = read_stream(client(proxy.url), "g", "s", startTime=events[5]["timestamp"], limit=50)
    assert [e["message"] for e in tail] == messages[5:]


def test_get_backward_page_keeps_the_newest_megabyte(double: Double, moto: MotoServer) -> None:
    """A GetLogEvents read from the tail (no startFromHead) keeps the newest events that fit."""
    proxy = double(AwsLike(page_cap=True))
    make_stream(moto.client())
    messages = big_and_burst(moto.client(), "g", "s", now_ms() - 60_000)
    page = client(proxy.url).get_log_events(logGroupName="g", logStreamName="s")
    got = [e["message"] for e in page["events"]]
    assert got == messages[-len(got) :]
    assert len(got) < len(messages)
    assert page_bytes(page["events"]) <= PAGE_BYTES


def test_filter_pages_hold_at_most_1mb_and_continue_exactly(
    double: Double, moto: MotoServer
) -> None:
    """FilterLogEvents pages stay under 1 MB and the tokens give every event once, in order."""
    proxy = double(AwsLike(page_cap=True))
    make_stream(moto.client(), "g", "a", "b")
    start = now_ms() - 60_000
    messages = big_and_burst(moto.client(), "g", "a", start)
    messages += big_and_burst(moto.client(), "g", "b", start + 1)
    events, sizes = filter_all(client(proxy.url), "g", interleaved=True)
    direct, direct_sizes = filter_all(moto.client(), "g", capped=False, interleaved=True)
    assert len(direct_sizes) == 1
    assert ids(events) == ids(direct)
    assert sorted(e["message"] for e in events) == sorted(messages)
    assert len(sizes) >= page_bytes(events) // PAGE_BYTES + 1 > 6


def test_short_and_empty_filter_pages_still_give_everything(
    double: Double, moto: MotoServer
) -> None:
    """Short and empty filter pages with a nextToken mid-result still give every event once."""
    proxy = double(AwsLike(short_pages=True, short_chance=0.5, seed=3))
    logs = moto.client()
    make_stream(logs, "g", "a", "b", "c")
    start = now_ms() - 60_000
    for n, stream in enumerate(("a", "b", "c")):
        logs.put_log_events(
            logGroupName="g",
            logStreamName=stream,
            logEvents=[
                {"timestamp": start + k, "message": f"{stream}{k:04d}"} for k in range(n, 600)
            ],
        )
    direct, _ = filter_all(logs, "g", interleaved=True)
    events, sizes = filter_all(client(proxy.url), "g", interleaved=True, limit=100)
    assert ids(events) == ids(direct)
    assert len(events) == len({e["eventId"] for e in events}) == 1797
    assert 0 in sizes[:-1], "no empty page mid-result"
    assert any(0 < n < 100 for n in sizes[:-1]), "no short page mid-result"
    assert proxy.stats.shaped["pages empty"] >= 1
    # From an empty first page too, and with a window.
    window, _ = filter_all(client(proxy.url), "g", startTime=start + 100, endTime=start + 200)
    assert {e["timestamp"] for e in window} == set(range(start + 100, start + 201))


def test_end_time_is_exclusive(double: Double, moto: MotoServer) -> None:
    """endTime leaves out events at that millisecond, where moto alone includes them."""
    proxy = double(AwsLike(exclusive_end=True))
    logs = moto.client()
    make_stream(logs)
    t = now_ms() - 60_000
    logs.put_log_events(
        logGroupName="g",
        logStreamName="s",
        logEvents=[{"timestamp": t + k, "message": str(k)} for k in range(4)],
    )
    window = {"startTime": t, "endTime": t + 2}
    for via, expected in ((proxy.url, ["0", "1"]), (moto.url, ["0", "1", "2"])):
        reader = client(via)
        got = reader.get_log_events(logGroupName="g", logStreamName="s", **window)["events"]
        assert [e["message"] for e in got] == expected
        got = reader.filter_log_events(logGroupName="g", **window)["events"]
        assert [e["message"] for e in got] == expected


def test_filter_is_interleaved_whatever_the_flag(double: Double, moto: MotoServer) -> None:
    """FilterLogEvents sorts by time across streams even when asked not to, as AWS does."""
    proxy = double(AwsLike(interleaved=True))
    logs = moto.client()
    make_stream(logs, "g", "a", "b")
    t = now_ms() - 60_000
    for offset, stream in ((0, "a"), (1, "b")):
        logs.put_log_events(
            logGroupName="g",
            logStreamName=stream,
            logEvents=[{"timestamp": t + 2 * k + offset, "message": stream} for k in range(5)],
        )
    assert [e["message"] for e in logs.filter_log_events(logGroupName="g")["events"]] == (
        ["a"] * 5 + ["b"] * 5
    )
    got = client(proxy.url).filter_log_events(logGroupName="g", interleaved=False)["events"]
    assert [e["message"] for e in got] == ["a", "b"] * 5


def test_every_answer_carries_the_date_header(double: Double) -> None:
    """Every answer (forwarded, shaped, local, fault) carries an HTTP Date of AWS's clock."""
    proxy = double()
    logs = client(proxy.url, retries={"total_max_attempts": 1, "mode": "standard"})
    make_stream(logs)
    answers = [
        logs.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "x"}]
        ),
        logs.describe_log_streams(logGroupName="g"),
        logs.get_log_events(logGroupName="g", logStreamName="s"),
        logs.filter_log_events(logGroupName="g"),
    ]
    proxy.policy = lambda _op, _request: Fault("throttle")
    with pytest.raises(logs.exceptions.ThrottlingException) as caught:
        logs.describe_log_streams(logGroupName="g")
    answers.append(caught.value.response)
    for answer in answers:
        date = parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"])
        assert abs(date.timestamp() - time.time()) < 5


def test_faults_and_quotas_still_apply_with_every_behaviour_on(double: Double) -> None:
    """The fault policy and the per-operation quotas still apply with every behaviour on."""
    proxy = double(AwsLike.all_on(4, visibility=(0.0, 0.2)), quotas={"DescribeLogStreams": 1})
    logs = client(proxy.url, retries={"total_max_attempts": 1, "mode": "standard"})
    make_stream(logs)
    throttled = 0
    began = time.monotonic()
    for _ in range(8):
        try:
            logs.describe_log_streams(logGroupName="g")
        except logs.exceptions.ThrottlingException:
            throttled += 1
    passed = 8 - throttled
    assert 1 <= passed <= 2 + (time.monotonic() - began) * 1
    proxy.policy = lambda op, _request: Fault("5xx") if op == "PutLogEvents" else None
    with pytest.raises(logs.exceptions.ServiceUnavailableException):
        logs.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "x"}]
        )
    assert proxy.pending() == 0
    assert proxy.stats.faults == {"throttle": throttled, "5xx": 1}


def test_every_behaviour_on_a_paged_read_during_writes_is_exact(double: Double) -> None:
    """Every behaviour on, reads during writes: a final read gives each event exactly once."""
    proxy = double(AwsLike.all_on(5, visibility=(0.2, 1.0), stale_fields=5.0))
    logs = client(proxy.url)
    make_stream(logs, "g", "a", "b")
    start = now_ms() - 30_000
    put_at: dict[str, tuple[int, int]] = {}
    for n in range(10):
        for stream in ("a", "b"):
            before = now_ms()
            batch = [f"{stream}{n:02d}{k:02d}" + "z" * 30_000 for k in range(20)]
            logs.put_log_events(
                logGroupName="g",
                logStreamName=stream,
                logEvents=[
                    {"timestamp": start + n * 10 + k // 4, "message": m}
                    for k, m in enumerate(batch)
                ],
            )
            put_at.update(dict.fromkeys(batch, (before, now_ms())))
        filter_all(logs, "g", startTime=start, endTime=start + 300)  # reads during writes
    assert proxy.wait_delivered(10)
    events, sizes = filter_all(logs, "g", startTime=start, endTime=start + 300)
    assert sorted(e["message"] for e in events) == sorted(put_at)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    for event in events:
        low, high = put_at[event["message"]]
        assert low <= event["ingestionTime"] <= high
    assert len(sizes) >= 12  # 400 events of 30 KB: over 11 MB in pages of 1 MB
    assert proxy.stats.delivery_errors == []


def test_expired_role_credentials_are_refused(double: Double) -> None:
    """Role credentials work until their Expiration by AWS's clock, then are refused."""
    proxy = double(AwsLike(expiring_credentials=True, clock_rate=600.0))
    sts = boto3_client("sts", proxy.url)
    before = proxy.aws_now()
    role = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="test",
                           DurationSeconds=900)["Credentials"]  # fmt: skip
    assumed_at = proxy.aws_now()
    assert before + 899 <= role["Expiration"].timestamp() <= assumed_at + 900
    logs = client(
        proxy.url,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    as_role = boto3_client(
        "logs",
        proxy.url,
        aws_access_key_id=role["AccessKeyId"],
        aws_secret_access_key=role["SecretAccessKey"],
        aws_session_token=role["SessionToken"],
    )
    make_stream(logs)
    as_role.describe_log_streams(logGroupName="g")
    time.sleep(max(0.0, (assumed_at + 905 - proxy.aws_now()) / 600))
    with pytest.raises(ClientError) as caught:
        as_role.describe_log_streams(logGroupName="g")
    assert caught.value.response["Error"]["Code"] == "ExpiredTokenException"
    logs.describe_log_streams(logGroupName="g")
    assert proxy.stats.shaped["expired credentials refused"] == 1


def test_a_fast_aws_clock_drives_date_ingestion_and_delays(double: Double) -> None:
    """A fast AWS clock drives the Date header, ingestion times and visibility delays."""
    proxy = double(AwsLike(visibility=(30.0, 60.0), clock_rate=60.0))
    logs = client(proxy.url)
    make_stream(logs)
    time.sleep(1.0)
    answer = logs.put_log_events(
        logGroupName="g",
        logStreamName="s",
        logEvents=[{"timestamp": proxy.aws_ms(), "message": "fast"}],
    )
    accepted = proxy.aws_ms()
    date = parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"]).timestamp()
    assert date - time.time() > 50  # a minute ahead after a second
    assert abs(date - proxy.aws_now()) < 3
    assert logs.filter_log_events(logGroupName="g")["events"] == []
    assert proxy.wait_delivered(3)
    (event,) = logs.filter_log_events(logGroupName="g")["events"]
    assert accepted - 1_000 <= event["ingestionTime"] <= accepted
    assert event["ingestionTime"] - time.time() * 1000 > 50_000
