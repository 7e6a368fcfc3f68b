"""Pure pieces: checkpoint arithmetic, datagram framing, and AWS error translation."""

from __future__ import annotations

import json
import random

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from aws_wodle import cursor, errors
from aws_wodle.budget import Budgets, RegionBudget
from aws_wodle.cloudwatch import EVENTS_PER_PAGE, EventPage, LogEvent, StreamInfo, translate
from aws_wodle.forward import HEADER, MAX_DATAGRAM, encode_message, frame
from aws_wodle.state import Position


def ev(ts: int, message: str = "m") -> LogEvent:
    return LogEvent(ts, message, ts + 1)


def test_resolve_new_stream_starts_at_only_logs_after() -> None:
    """A stream never seen starts at the configured start, with no backfill."""
    assert cursor.resolve(None, 1000) == Position(covered_from=1000)


def test_resolve_earlier_start_backfills_the_gap() -> None:
    """only_logs_after moved earlier: the gap up to covered_from is read once."""
    position = Position(covered_from=1000, last_ts=5000)
    opened = cursor.resolve(position, 400)
    assert (opened.covered_from, opened.gap_from, opened.gap_until) == (400, 400, 1000)
    assert cursor.gap_request(opened) == cursor.Request(start_time=400, end_time=1000)
    assert cursor.resolve(opened, 100) == opened  # an open gap is finished first
    progressed = cursor.advance_gap(opened, [ev(500, "a"), ev(700, "b")])
    assert cursor.gap_request(progressed) == cursor.Request(
        start_time=700, end_time=1000, skip=(cursor.digest(ev(700, "b")),)
    )
    assert cursor.gap_request(cursor.close_gap(progressed)) is None


def test_resolve_later_start_restarts_there() -> None:
    """only_logs_after moved past the newest event forwarded: restart there."""
    position = Position(covered_from=1000, last_ts=5000, token="t", token_start=1000)
    assert cursor.resolve(position, 6000) == Position(covered_from=6000)
    assert cursor.resolve(position, 3000) == position


def test_fresh_token_is_used_with_its_own_start_time() -> None:
    """A token younger than its trusted age resumes the read, with its start time."""
    position = Position(covered_from=1, last_ts=9, token="f/1", token_start=1, token_saved=100.0)
    assert cursor.forward_request(position, 100.0 + 60) == cursor.Request(1, token="f/1")


def test_old_token_falls_back_to_timestamp_and_boundary() -> None:
    """Past 23 hours, the read restarts at the last timestamp, skipping the boundary events."""
    boundary = (cursor.digest(ev(9, "a")),)
    position = Position(1, 9, boundary, "f/1", 1, token_saved=0.0)
    request = cursor.forward_request(position, cursor.TOKEN_TRUST_SECONDS + 1)
    assert request == cursor.Request(start_time=9, skip=boundary)
    page = EventPage([ev(9, "a"), ev(9, "b"), ev(10, "c")], "f/2")
    assert [e.message for e in cursor.new_events(request, page)] == ["b", "c"]


def test_boundary_skips_each_repeat_once() -> None:
    """Two identical events in one millisecond: one forwarded means one skipped, not both."""
    request = cursor.Request(start_time=9, skip=(cursor.digest(ev(9, "x")),))
    page = EventPage([ev(9, "x"), ev(9, "x")], "t")
    assert len(cursor.new_events(request, page)) == 1


def test_advance_keeps_every_digest_of_the_last_millisecond() -> None:
    """After a page, the boundary holds each event forwarded at the newest timestamp."""
    start = Position(covered_from=0, last_ts=5, boundary=("old",))
    page = EventPage([ev(5, "p"), ev(7, "q"), ev(7, "r")], "f/9")
    request = cursor.Request(start_time=0, token="f/8")
    new = cursor.advance(start, request, page, page.events, now=42.0)
    assert new.last_ts == 7
    assert new.boundary == (cursor.digest(ev(7, "q")), cursor.digest(ev(7, "r")))
    assert (new.token, new.token_start, new.token_saved) == ("f/9", 0, 42.0)
    same_ms = cursor.advance(start, request, EventPage([ev(5, "s")], "x"), [ev(5, "s")], 1.0)
    assert same_ms.boundary == ("old", cursor.digest(ev(5, "s")))


def test_backfill_leaves_out_events_at_its_end() -> None:
    """A backfill never forwards events at or after covered_from (moto's endTime is inclusive)."""
    request = cursor.Request(start_time=100, end_time=200)
    page = EventPage([ev(150), ev(199), ev(200)], "t")
    assert [e.timestamp for e in cursor.new_events(request, page)] == [150, 199]


def test_end_detection() -> None:
    """The same token back ends a read; so does a page reaching lastEventTimestamp, which
    only a short page confirms."""
    info = StreamInfo("s", 0, 0, last_event=50, last_ingestion=51)
    with_token = cursor.Request(0, token="t")
    assert cursor.at_end(with_token, EventPage([], "t"), info, 40)
    no_token = cursor.Request(0)
    assert cursor.at_end(no_token, EventPage([ev(50)], "u"), info, 50)
    assert not cursor.at_end(no_token, EventPage([ev(40)], "u"), info, 40)
    full = EventPage([ev(50)] * EVENTS_PER_PAGE, "u")
    assert cursor.at_end(no_token, full, info, 50)
    assert not cursor.confirmed_end(no_token, full)
    assert cursor.confirmed_end(no_token, EventPage([ev(50)], "u"))
    assert cursor.confirmed_end(with_token, EventPage([ev(50)] * EVENTS_PER_PAGE, "t"))


def test_frame_is_header_plus_utf8() -> None:
    """A datagram is the header and the message's UTF-8 bytes, nothing else."""
    assert frame("héllo") == (HEADER + "héllo".encode(), False)


def test_frame_truncates_at_a_character_boundary() -> None:
    """Over 65,535 bytes, the datagram is cut to fit, never inside a UTF-8 sequence."""
    data, cut = frame("€" * 40_000)
    assert cut
    assert len(data) <= MAX_DATAGRAM
    assert len(data) > MAX_DATAGRAM - 3
    data[len(HEADER) :].decode("utf-8")


def test_lone_surrogates_are_escaped_and_json_stays_valid() -> None:
    """An unpaired surrogate never fails the send, and a JSON message still parses."""
    message = json.dumps({"x": "\ud83d"}, ensure_ascii=False)
    encoded = encode_message(message)
    assert json.loads(encoded.decode("utf-8")) == {"x": "\ud83d"}


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Op",
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("AccessDeniedException"), errors.AccessDenied),
        (
            client_error("403", 403, "<ErrorResponse>AccessDenied</ErrorResponse>"),
            errors.AccessDenied,
        ),
        (client_error("ResourceNotFoundException"), errors.GroupNotFound),
        (client_error("ThrottlingException"), errors.Throttled),
        (client_error("UnrecognizedClientException"), errors.RegionUnavailable),
        (client_error("InvalidParameterException", message="bad nextToken"), errors.TokenRejected),
        (client_error("ServiceUnavailableException", 503), errors.AwsError),
        (NoCredentialsError(), errors.CredentialsError),
        (EndpointConnectionError(endpoint_url="http://x"), errors.RegionUnavailable),
    ],
)
def test_every_botocore_error_is_translated(exc: Exception, kind: type[errors.AwsError]) -> None:
    """botocore errors become ours, of the right kind, naming the operation for a denial."""
    translated = translate(exc, "DeleteLogStream")
    assert type(translated) is kind
    if kind is errors.AccessDenied:
        assert "logs:DeleteLogStream" in str(translated)


class FakeClock:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_throttle_pauses_every_caller_of_the_region() -> None:
    """After a throttle, any call of the account and region waits out the shared pause."""
    clock = FakeClock()
    budget = RegionBudget(clock=clock.time, sleep=clock.sleep, rng=random.Random(1))
    assert budget.acquire("GetLogEvents") == 0
    pause = budget.throttled("GetLogEvents")
    assert pause > 0
    assert budget.acquire("DescribeLogStreams") >= pause
    assert budget.rate("GetLogEvents") == 5.0
    second = budget.throttled("GetLogEvents")
    assert budget.rate("GetLogEvents") == 2.5
    assert second > pause * 0.5  # the pause grows with a streak of throttles
    for _ in range(40):
        budget.succeeded("GetLogEvents")
    assert budget.rate("GetLogEvents") == 10.0


def test_the_bucket_holds_the_configured_rate() -> None:
    """Calls beyond the rate wait: 30 GetLogEvents at 10/s take about 2 s after the burst."""
    clock = FakeClock()
    budget = RegionBudget(clock=clock.time, sleep=clock.sleep)
    start = clock.now
    for _ in range(30):
        budget.acquire("GetLogEvents")
    assert 1.9 <= clock.now - start <= 2.1


def test_budgets_are_shared_per_account_and_region() -> None:
    """Every wodle of one account and region gets the very same budget."""
    budgets = Budgets({"GetLogEvents": 3.0})
    assert budgets.get("1", "us-east-1") is budgets.get("1", "us-east-1")
    assert budgets.get("1", "us-east-1") is not budgets.get("2", "us-east-1")
    assert budgets.get("1", "eu-west-1").rate("GetLogEvents") == 3.0


def test_an_all_boundary_skips_every_event_at_that_millisecond() -> None:
    """An imported position (no digests) skips every event at its last timestamp, once."""
    position = Position(covered_from=0, last_ts=9, boundary=(cursor.ALL_AT_BOUNDARY,))
    request = cursor.timestamp_request(position)
    page = EventPage([ev(9, "a"), ev(9, "b"), ev(10, "c")], "t")
    assert [e.message for e in cursor.new_events(request, page)] == ["c"]
    chooser = cursor.GroupFilter({"s": position})
    assert [chooser.accept("s", e) for e in page.events] == [False, False, True]
