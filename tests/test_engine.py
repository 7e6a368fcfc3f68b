"""The read engine in-process, against a fake with AWS's page semantics and a test clock."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from aws_wodle.aws.serverclock import ServerClock
from aws_wodle.model import Boundary, Cursor, Cycle, Gap, GroupKey, LogEvent
from aws_wodle.poll import boundary, window
from aws_wodle.poll.grouppass import GroupPass, Outside, Settings
from aws_wodle.poll.groups import GroupOptions
from aws_wodle.poll.pipeline import Tally
from support.fakelogs import Crash, FakeLogs, ListSink, MemoryStore

KEY = GroupKey("123456789012", "us-east-1", "app")
MINUTE = 60_000
LOOKBACK = 15 * MINUTE
SETTLE = 10_000
INTERVAL = 10_000


class Rig:
    """A fake region, a store, a sink and the engine's settings: one cycle at a time."""

    def __init__(
        self, *, lookback: int = LOOKBACK, settle: int = SETTLE, late_every: int = 0, **fake: object
    ) -> None:
        self.logs = FakeLogs(**fake)  # type: ignore[arg-type]
        self.key = KEY
        self.target: str | None = None
        self.options = GroupOptions()
        self.store = MemoryStore()
        self.sink = ListSink()
        self.settings = Settings(
            lookback_ms=lookback, settle_ms=settle, remove_idle_ms=0, late_every_ms=late_every
        )
        self.start = self.logs.now - 3_600_000
        self.tally = Tally()

    def cycle(self, *, remove: bool = False) -> Tally:
        tally = Tally()
        outside = Outside(
            store=self.store,
            sink=self.sink,
            filter_denied=lambda key: key in self.store.denied,
            deny_filter=self.store.denied.add,
        )
        settings = replace(self.settings, remove=remove)
        GroupPass(
            self.key,
            self.logs,
            outside,
            settings,
            discard=None,
            tally=tally,
            target=self.target,
            options=self.options,
        ).run(self.start)
        self.tally.add(tally)
        return tally


def drain(rig: Rig, cycles: int = 3) -> None:
    """Let every event settle and be read."""
    for _ in range(cycles):
        rig.logs.advance(rig.settings.settle_ms + INTERVAL)
        rig.cycle()


def test_late_events_within_the_lookback_are_sent_exactly_once() -> None:
    """Events arriving up to the lookback after their timestamps, readable up to the settle
    margin after their ingestion, in pages cut short at random: each sent once."""
    rng = random.Random(11)
    rig = Rig(page_events=7, short_pages=0.3)
    rig.logs.put("app", "s0", rig.logs.now - 1000, "seed")
    expected = ["seed"]
    for step in range(120):
        for n in range(rng.randint(0, 6)):
            late = rng.choice([0, 1, 500, 30_000, 5 * MINUTE, LOOKBACK - SETTLE - 1])
            message = f"e{step}-{n}"
            stream = f"s{rng.randint(0, 9)}"
            rig.logs.put("app", stream, rig.logs.now - late, message, delay=rng.randint(0, SETTLE))
            expected.append(message)
        rig.logs.advance(rng.randint(1, 2 * INTERVAL))
        if step % 3 == 0:
            rig.cycle()
    drain(rig)
    got = rig.sink.messages()
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))


def test_a_same_millisecond_burst_over_1_mb_pages_is_sent_whole() -> None:
    """80 events of 200 KB in one millisecond span many 1 MB pages: all are sent in the
    cycle that reads them, once."""
    rig = Rig()
    ts = rig.logs.now - 5_000
    burst = [f"{i:03d}" + "x" * 200_000 for i in range(80)]
    for message in burst:
        rig.logs.put("app", "busy", ts, message)
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert sorted(m[:3] for m in rig.sink.messages()) == [m[:3] for m in burst]
    assert rig.logs.calls["FilterLogEvents"] >= 16
    rig.cycle()
    assert len(rig.sink.received) == 80


def test_an_event_readable_within_the_settle_margin_is_not_lost() -> None:
    """An event that becomes readable only after a read began its fence is sent by a later
    read, never skipped."""
    rig = Rig()
    rig.logs.put("app", "s", rig.logs.now - 100, "slow", delay=SETTLE - 1)
    rig.logs.advance(SETTLE - 2)
    rig.cycle()
    assert rig.sink.received == []
    rig.logs.advance(2)
    rig.cycle()
    rig.logs.advance(SETTLE)
    rig.cycle()
    assert rig.sink.messages() == ["slow"]


@pytest.mark.parametrize("seed", range(8))
def test_a_crash_mid_page_repeats_at_most_that_page(seed: int) -> None:
    """A sink dying at a random point of a multi-page read: the next run resumes the same
    read from its mark; nothing is lost, at most one page is repeated."""
    rng = random.Random(seed)
    rig = Rig(page_events=50)
    expected = []
    for i in range(400):
        late = rng.choice([0, 10, 2 * MINUTE])
        message = f"m{i}"
        rig.logs.put("app", f"s{i % 7}", rig.logs.now - late - (400 - i) * 10, message)
        expected.append(message)
    rig.logs.advance(SETTLE + 1)
    rig.sink.fail_after = rng.randint(0, 399)
    with pytest.raises(Crash):
        rig.cycle()
    assert rig.store.cursors[KEY].cycle is not None
    rig.cycle()
    drain(rig)
    got = rig.sink.messages()
    assert set(got) == set(expected)
    assert len(got) - len(set(got)) <= 50


def test_idle_cycles_cost_one_call_at_any_size() -> None:
    """A group of 2,000 streams with nothing new costs one FilterLogEvents call a cycle."""
    rig = Rig()
    for i in range(2000):
        rig.logs.put("app", f"s{i}", rig.logs.now - 2 * 3_600_000 + i, f"old{i}")
    rig.start = rig.logs.now - 3 * 3_600_000
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert len(rig.sink.received) == 2000
    for _ in range(5):
        rig.logs.calls.clear()
        rig.logs.advance(INTERVAL)
        rig.cycle()
        assert dict(rig.logs.calls) == {"FilterLogEvents": 1}
    assert len(rig.sink.received) == 2000


def test_events_later_than_the_lookback_are_not_seen_and_near_ones_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The documented limit: an event later than the lookback is not sent; one close to it
    is sent, counted in the lateness histogram, and warned about."""
    rig = Rig()
    rig.logs.put("app", "s", rig.logs.now - 1000, "first")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    drain(rig, cycles=1)  # past the first collection's tail, which sends any timestamp
    rig.logs.put("app", "s", rig.logs.now - LOOKBACK - 2 * SETTLE - 1000, "too-late")
    rig.logs.put("app", "s", rig.logs.now - int(LOOKBACK * 0.9), "nearly-too-late")
    drain(rig)
    assert rig.sink.messages() == ["first", "nearly-too-late"]
    assert rig.tally.lateness[900.0] == 1
    assert any("close to the lookback" in r.getMessage() for r in caplog.records)


def test_lookback_zero_reads_from_the_newest_event_sent() -> None:
    """Without a lookback, each read starts at the newest event sent: nothing re-read."""
    rig = Rig(lookback=0)
    rig.logs.put("app", "s", rig.logs.now - 1000, "a")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    drain(rig, cycles=1)  # past the first collection's tail
    cursor = rig.store.cursors[KEY]
    assert window.window_start(cursor, 0, {}) == cursor.newest_ts


def test_host_clock_plays_no_part_in_the_fences() -> None:
    """Fences come from AWS's clock: the ServerClock corrects a host an hour off to within
    the Date header's second."""
    host = [1_700_000_000.0 + 3600]
    clock = ServerClock(lambda: host[0])
    aws_ms = 1_700_000_000_000
    clock.observe("Tue, 14 Nov 2023 22:13:20 GMT", clock.host_ms(), clock.host_ms() + 20)
    assert abs(clock.now_ms() - aws_ms) <= 1000
    host[0] -= 7200
    clock.observe("Tue, 14 Nov 2023 22:13:20 GMT", clock.host_ms(), clock.host_ms() + 20)
    assert abs(clock.now_ms() - aws_ms) <= 1000
    right = ServerClock(lambda: 1_700_000_000.25)
    right.observe("Tue, 14 Nov 2023 22:13:20 GMT", right.host_ms() - 10, right.host_ms() + 10)
    assert right.now_ms() == 1_700_000_000_250


def test_per_stream_reads_when_filter_is_denied_send_the_same() -> None:
    """Without FilterLogEvents, each stream is read with GetLogEvents under the same rule:
    late events are still sent once."""
    rig = Rig(deny_filter=True, page_events=3)
    rig.logs.put("app", "a", rig.logs.now - 1000, "a1")
    rig.logs.put("app", "b", rig.logs.now - 900, "b1")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert KEY in rig.store.denied
    rig.logs.put("app", "a", rig.logs.now - 5 * MINUTE, "a-late")
    for i in range(7):
        rig.logs.put("app", "c", rig.logs.now - 100 + i, f"c{i}")
    drain(rig)
    got = rig.sink.messages()
    assert sorted(got) == sorted(["a1", "b1", "a-late"] + [f"c{i}" for i in range(7)])
    assert rig.logs.calls["GetLogEvents"] > 0


def test_seeds_from_per_stream_positions_skip_what_was_sent() -> None:
    """A first read after per-stream positions (an older state file, or the old module's)
    skips each stream's events up to its position, and sends the rest once."""
    rig = Rig()
    ts = rig.logs.now - 60_000
    for name in ("sent-1", "sent-2", "twin", "new"):
        rig.logs.put("app", "s", ts if name != "new" else ts + 5, name)
    rig.logs.put("app", "other", ts - 10, "unknown-stream")
    sent_twin = LogEvent(ts, "twin", 0)
    rig.store.seeded[KEY] = {
        "s": Boundary(ts, (boundary.digest(sent_twin), boundary.digest(LogEvent(ts, "sent-1", 0)),
                           boundary.digest(LogEvent(ts, "sent-2", 0)))),
    }  # fmt: skip
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert sorted(rig.sink.messages()) == ["new", "unknown-stream"]
    assert KEY not in rig.store.seeded


def test_only_logs_after_moves_earlier_then_later() -> None:
    """Moved earlier: the gap is read once; moved past the newest event: restart there."""
    rig = Rig()
    now = rig.logs.now
    for message, ts in (
        ("old", now - 50 * MINUTE),
        ("mid", now - 30 * MINUTE),
        ("new", now - 10 * MINUTE),
    ):
        rig.logs.put("app", "s", ts, message)  # fmt: skip
    rig.start = now - 40 * MINUTE
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert rig.sink.messages() == ["mid", "new"]
    rig.start = now - 60 * MINUTE
    rig.logs.advance(INTERVAL)
    rig.cycle()
    assert rig.sink.messages() == ["mid", "new", "old"]
    assert rig.store.cursors[KEY].gap is None
    rig.logs.put("app", "s", now - 5 * MINUTE, "skipped")
    rig.logs.put("app", "s", now + MINUTE, "later")
    rig.start = now
    drain(rig)
    assert rig.sink.messages() == ["mid", "new", "old", "later"]


def test_resolve_and_fences_are_monotonic() -> None:
    """A read under way is never disturbed by a moved start; a fence never goes back."""
    under_way = Cursor(covered_from=100, fence=500, cycle=Cycle(lo=50, fence=600))
    assert window.resolve(under_way, 10) is under_way
    gapped = window.resolve(Cursor(covered_from=100, fence=500, newest_ts=400), 10)
    assert gapped.gap == Gap(start=10, until=100, fence=500)
    assert window.next_fence(1000, 30, previous=2000) == 2000
    assert window.next_fence(1000, 30, previous=None) == 970


def test_removal_deletes_only_idle_streams_whose_events_were_sent() -> None:
    """remove_log_streams: an idle stream fully sent goes; one with an event not yet
    readable, or not yet sent, stays until it is sent (even with no idle margin)."""
    rig = Rig()
    rig.logs.put("app", "idle", rig.logs.now - 1000, "i")
    rig.logs.advance(SETTLE + 1)
    rig.cycle(remove=True)
    assert "idle" not in rig.logs.groups["app"]
    rig.logs.put("app", "busy", rig.logs.now - 1000, "b", delay=SETTLE)
    rig.logs.advance(SETTLE // 2)
    rig.cycle(remove=True)
    assert "busy" in rig.logs.groups["app"]
    assert rig.sink.messages() == ["i"]
    rig.logs.advance(SETTLE // 2 + 1)
    rig.cycle(remove=True)
    assert rig.sink.messages() == ["i", "b"]
    assert "busy" not in rig.logs.groups["app"]


def test_the_engine_imports_no_boto3_sqlite3_or_lxml() -> None:
    """The polling engine (every module of poll/, with model, AWS's clock and the envelope)
    loads no outside library."""
    poll = Path(__file__).resolve().parent.parent / "src" / "aws_wodle" / "poll"
    engine = sorted(f"aws_wodle.poll.{path.stem}" for path in poll.glob("[!_]*.py"))
    assert "aws_wodle.poll.grouppass" in engine
    modules = ["aws_wodle.model", "aws_wodle.aws.serverclock", "aws_wodle.manager.envelope"]
    code = (
        "import importlib, sys\n"
        f"for name in {[*engine, *modules]!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'sqlite3', '_sqlite3', 'lxml'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# Per-group options: stream filters, the envelope, and groups of other accounts by ARN.

LEFT_OUT = ("health-1", "api-internal-1")


@pytest.mark.parametrize("seed", range(6))
def test_left_out_streams_are_neither_sent_nor_counted_and_a_crash_resumes_exactly(
    seed: int,
) -> None:
    """include_streams and exclude_streams: events of streams left out are never sent nor
    counted, interleaved with kept ones in pages a crash cuts at random; the resumed read
    loses nothing and repeats at most one page."""
    rng = random.Random(seed)
    rig = Rig(page_events=20, short_pages=0.2)
    rig.options = GroupOptions(include_streams=("web-", "api-"), exclude_streams=("api-internal",))
    kept = []
    streams = ["web-1", "web-2", "api-1", *LEFT_OUT]
    for i in range(300):
        stream = rng.choice(streams)
        ts = rig.logs.now - (300 - i) * 7 - rng.choice([0, 0, 3 * MINUTE])
        rig.logs.put("app", stream, ts, f"{stream}:{i}")
        if stream not in LEFT_OUT:
            kept.append(f"{stream}:{i}")
    rig.logs.advance(SETTLE + 1)
    rig.sink.fail_after = rng.randint(0, len(kept) - 1)
    with pytest.raises(Crash):
        rig.cycle()
    drain(rig)
    got = rig.sink.messages()
    assert set(got) == set(kept)
    assert len(got) - len(set(got)) <= 20
    # Committed pages hold each kept event once (the page cut by the crash was not
    # committed): the stored counts know of no event left out.
    assert {stream for (_, stream) in rig.store.counts} <= {"web-1", "web-2", "api-1"}
    assert sum(rig.store.counts.values()) == len(kept)


def test_one_included_prefix_is_left_to_filterlogevents() -> None:
    """With one include_streams prefix, FilterLogEvents is asked for those streams only (AWS
    honours logStreamNamePrefix): a busy stream left out costs no page."""
    rig = Rig(page_events=100)
    for i in range(1000):
        rig.logs.put("app", "noise", rig.logs.now - 50_000 + i, f"n{i}")
    for i in range(5):
        rig.logs.put("app", "web-1", rig.logs.now - 40_000 + i, f"w{i}")
    rig.options = GroupOptions(include_streams=("web-",))
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert rig.sink.messages() == [f"w{i}" for i in range(5)]
    assert rig.logs.calls["FilterLogEvents"] == 1


def test_per_stream_reads_skip_left_out_streams() -> None:
    """Where FilterLogEvents is denied, streams left out are not even read."""
    rig = Rig(deny_filter=True)
    rig.logs.put("app", "web-1", rig.logs.now - 1000, "kept")
    rig.logs.put("app", "health-1", rig.logs.now - 900, "left out")
    rig.options = GroupOptions(exclude_streams=("health-",))
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    assert rig.sink.messages() == ["kept"]
    # One stream read: its page, and the page whose token comes back (its end).
    assert rig.logs.calls["GetLogEvents"] == 2


def test_removal_never_deletes_a_left_out_stream() -> None:
    """remove_log_streams deletes idle kept streams, never a stream whose events were left
    out (they were not sent: not ours to delete)."""
    rig = Rig()
    rig.logs.put("app", "web-1", rig.logs.now - 1000, "kept")
    rig.logs.put("app", "health-1", rig.logs.now - 1000, "left out")
    rig.options = GroupOptions(exclude_streams=("health-",))
    rig.logs.advance(SETTLE + 1)
    rig.cycle(remove=True)
    assert sorted(rig.logs.groups["app"]) == ["health-1"]
    assert rig.sink.messages() == ["kept"]


def test_the_envelope_carries_each_events_source() -> None:
    """envelope = true: each datagram is the header and a JSON object with the message and
    its group, stream, account, region, event id and times."""
    rig = Rig()
    ts = 1_700_000_000_123
    rig.logs.put("app", "s-1", ts, '{"k": "v"}')
    rig.options = GroupOptions(envelope=True)
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    [datagram] = rig.sink.received
    assert datagram.startswith(b"1:Wazuh-AWS:{")
    assert json.loads(datagram[len(b"1:Wazuh-AWS:") :]) == {
        "integration": "aws",
        "aws": {
            "source": "cloudwatchlogs",
            "log_info": {
                "log_group": "app",
                "log_stream": "s-1",
                "aws_account_id": KEY.account,
                "aws_region": KEY.region,
                "event_id": "1",
                "timestamp": "2023-11-14T22:13:20.123Z",
                "ingestion_time": "2023-11-14T22:13:20.000Z",
            },
            "message": '{"k": "v"}',
        },
    }


@pytest.mark.parametrize("denied", [False, True], ids=["filter", "per-stream"])
def test_a_group_named_by_arn_is_read_through_its_arn(denied: bool) -> None:
    """Another account's group: every call names it by ARN, the state is kept under the
    ARN's account, region and name, and late events are still sent once."""
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:shared"
    rig = Rig(deny_filter=denied)
    rig.key = GroupKey("111122223333", "eu-west-1", "shared")
    rig.target = arn
    rig.logs.put(arn, "s", rig.logs.now - 1000, "a")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    rig.logs.put(arn, "s", rig.logs.now - 5 * MINUTE, "late")
    drain(rig)
    assert rig.sink.messages() == ["a", "late"]
    assert set(rig.store.cursors) == {rig.key}
