"""The log events reader against a real moto server (and the AWS-like proxy for broken
answers): what a page holds, what it keeps in memory, and what a bad answer does."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from aws_wodle.aws.cloudwatch import MAX_ATTEMPTS, AwsAccess
from aws_wodle.config import CloudWatchService
from aws_wodle.errors import AwsError
from awsproxy import AwsLike, Fault
from conftest import MotoServer, seed

GROUP = "reader-group"


def _service(endpoint: str) -> CloudWatchService:
    return CloudWatchService(
        line=1,
        log_groups=(GROUP,),
        regions=("us-east-1",),
        only_logs_after=None,
        access_key="testing",
        secret_key="testing",
        service_endpoint=endpoint,
    )


def test_a_page_keeps_event_ids_only_when_asked_and_one_string_per_stream(
    moto: MotoServer,
) -> None:
    """Without ``ids`` every event's id is empty and nothing else changes; with them (the
    envelope's case) each event has moto's id; the events of one stream share one name
    string."""
    seed(moto.client("logs"), GROUP, {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2"]})
    logs = AwsAccess(_service(moto.url)).logs("us-east-1")
    with_ids = logs.filter(GROUP, start=0).events
    without = logs.filter(GROUP, start=0, ids=False).events
    assert sorted(e.message for e in with_ids) == ["a1", "a2", "a3", "b1", "b2"]
    assert all(e.event_id for e in with_ids)
    assert [e.event_id for e in without] == [""] * 5
    assert [e._replace(event_id="") for e in with_ids] == without
    alphas = [e.stream for e in without if e.stream == "alpha"]
    assert len(alphas) == 3
    assert all(name is alphas[0] for name in alphas)


def _messages(count: int) -> list[str]:
    """Messages of every UTF-8 width, long enough that a page spans many reads."""
    return [f'event {i:05d} é € 😀 "quoted" \\ {"x" * (i % 300)}' for i in range(count)]


def test_events_read_as_they_arrive_equal_botocores_own_parse(moto: MotoServer) -> None:
    """A FilterLogEvents and a GetLogEvents page of 3,000 events (some 600 KB, many
    reads of the connection, characters cut between them) decode to what a plain boto3
    client parses from the same answers."""
    seed(moto.client("logs"), GROUP, {"alpha": _messages(2_000), "beta": _messages(1_000)})
    logs = AwsAccess(_service(moto.url)).logs("us-east-1")
    plain = moto.client("logs")
    ours = logs.filter(GROUP, start=0)
    theirs = plain.filter_log_events(logGroupName=GROUP, startTime=0, interleaved=True)
    assert len(ours.events) == 3_000
    assert [
        (e.timestamp, e.message, e.ingestion_time, e.stream, e.event_id) for e in ours.events
    ] == [
        (e["timestamp"], e["message"], e["ingestionTime"], e["logStreamName"], e["eventId"])
        for e in theirs["events"]
    ]
    assert ours.next_token == theirs.get("nextToken")
    page = logs.read(GROUP, "alpha", start=0, token=None)
    answer = plain.get_log_events(
        logGroupName=GROUP, logStreamName="alpha", startTime=0, startFromHead=True
    )
    assert [(e.timestamp, e.message, e.ingestion_time) for e in page.events] == [
        (e["timestamp"], e["message"], e["ingestionTime"]) for e in answer["events"]
    ]
    assert page.next_token == answer["nextForwardToken"]


def test_a_page_is_never_held_whole_beside_its_events(moto: MotoServer) -> None:
    """While a page of 10,000 events is read, the reader's memory beyond the events it
    returns stays under a tenth of the answer's size: the body is decoded as it arrives,
    never joined, nor decoded into one text."""
    seed(moto.client("logs"), GROUP, {"alpha": _messages(10_000)})
    logs = AwsAccess(_service(moto.url)).logs("us-east-1")
    logs.filter(GROUP, start=0, ids=False)  # the client, its models and pool, made once
    body = len(json.dumps(moto.client("logs").filter_log_events(logGroupName=GROUP)["events"]))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        page = logs.filter(GROUP, start=0, ids=False)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(page.events) == 10_000
    assert body > 2_000_000
    assert peak - kept < body / 10, (peak - before, kept - before, body)


def test_an_answer_cut_short_is_read_again_whole(moto: MotoServer, double: Any) -> None:
    """A 200 answer whose connection closes halfway through its body is a broken
    connection: botocore asks again, and the page arrives whole, never shortened."""
    seed(moto.client("logs"), GROUP, {"alpha": _messages(3_000)})
    cuts = iter([Fault("cut")])
    proxy = double(
        AwsLike(), policy=lambda op, _: next(cuts, None) if op == "FilterLogEvents" else None
    )
    page = AwsAccess(_service(proxy.url)).logs("us-east-1").filter(GROUP, start=0)
    assert [e.message for e in page.events] == _messages(3_000)
    assert proxy.stats.faults["cut"] == 1
    assert proxy.stats.calls["FilterLogEvents"] == 2


def test_an_answer_that_is_not_json_is_an_error_not_an_empty_page(
    moto: MotoServer, double: Any
) -> None:
    """A 200 answer that holds no page (botocore alone would take it for an empty last
    page, ending the read) fails the call, after botocore's attempts, with a clear error."""
    seed(moto.client("logs"), GROUP, {"alpha": ["a1"]})
    proxy = double(
        AwsLike(), policy=lambda op, _: Fault("garbled") if op == "FilterLogEvents" else None
    )
    logs = AwsAccess(_service(proxy.url)).logs("us-east-1")
    with pytest.raises(AwsError, match="not valid JSON"):
        logs.filter(GROUP, start=0)
    assert proxy.stats.calls["FilterLogEvents"] == MAX_ATTEMPTS


def test_any_calls_answer_that_is_not_json_is_an_error(moto: MotoServer, double: Any) -> None:
    """The same holds for every call, a listing of streams among them: a garbled 200
    answer fails the call rather than list no streams, and one cut short is asked again."""
    seed(moto.client("logs"), GROUP, {"alpha": ["a1"], "beta": ["b1"]})
    faults = iter([Fault("cut")])
    proxy = double(
        AwsLike(), policy=lambda op, _: next(faults, None) if op == "DescribeLogStreams" else None
    )
    logs = AwsAccess(_service(proxy.url)).logs("us-east-1")
    assert sorted(s.name for s in logs.streams(GROUP)) == ["alpha", "beta"]
    assert proxy.stats.calls["DescribeLogStreams"] == 2
    proxy.policy = lambda op, _: Fault("garbled") if op == "DescribeLogStreams" else None
    with pytest.raises(AwsError, match="not valid JSON"):
        list(logs.streams(GROUP))
