"""End-to-end collection: ossec.conf in, datagrams out, against moto and a real socket."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

from conftest import Setup, cli_env, now_ms, put, seed


def day(ms: int) -> str:
    """The ISO date of a timestamp, for only_logs_after."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def test_wire_bytes_are_header_and_raw_message(setup: Setup) -> None:
    """Each event is one datagram: '1:Wazuh-AWS:' + the raw UTF-8 message, in stream order."""
    logs = setup.moto.client()
    messages = [
        '{"eventType": "test", "seq": 0, "action": "REJECT"}',
        "plain text line 1 from stream-000",
        "café ☕ naïve 日本語",
    ]
    seed(logs, "app", {"stream-000": messages})
    result = setup.once(setup.config(setup.service("app")))
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(3)
    assert setup.sink.received == [b"1:Wazuh-AWS:" + m.encode("utf-8") for m in messages]


def test_second_run_sends_nothing_then_only_new_events(setup: Setup) -> None:
    """A second run with nothing new sends nothing; events added later are sent once."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"a": [f"a{i}" for i in range(5)], "b": ["b0", "b1"]})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(7)
    assert sorted(setup.sink.messages()) == sorted([f"a{i}" for i in range(5)] + ["b0", "b1"])
    assert setup.once(conf).returncode == 0
    assert len(setup.sink.received) == 7
    put(logs, "app", "a", ["a5", "a6"], first + 10)
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(9)
    assert setup.sink.messages()[7:] == ["a5", "a6"]
    assert setup.once(conf).returncode == 0
    assert len(setup.sink.received) == 9


def test_events_sharing_the_last_millisecond_are_not_lost(setup: Setup) -> None:
    """A late event with the same timestamp as the last one sent is sent, once."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["x0", "x1", "x2"]})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    put(logs, "app", "s", ["x2-twin"], first + 2)
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(4)
    assert setup.sink.messages() == ["x0", "x1", "x2", "x2-twin"]
    assert setup.once(conf).returncode == 0
    assert len(setup.sink.received) == 4


def test_late_events_older_than_those_sent_are_sent_once(setup: Setup) -> None:
    """Events put later with timestamps older than events already sent (within the
    lookback), in a stream and in a new one, are sent once; nothing else is repeated."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["y0", "y1", "y2", "y2b"]})
    put(logs, "app", "s", ["same-ms"], first + 3)
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    put(logs, "app", "s", ["late-in-s"], first - 5_000)
    put(logs, "app", "s", ["same-ms-again"], first + 3)
    seed(logs, "app", {"t": ["late-in-t"]}, start=first - 20_000)
    put(logs, "app", "s", ["later"], first + 50)
    assert setup.once(conf).returncode == 0
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(9)
    got = setup.sink.messages()
    assert sorted(got) == sorted(
        ["y0", "y1", "y2", "y2b", "same-ms", "late-in-s", "same-ms-again", "late-in-t", "later"]
    )
    assert len(got) == 9


def test_only_logs_after_moves(setup: Setup) -> None:
    """Events before only_logs_after are skipped; moved earlier, the gap comes once;
    moved later than what was collected, collection restarts there."""
    logs = setup.moto.client()
    day_ms = 86_400_000
    base = now_ms() - 5 * day_ms  # CloudWatch (and moto) refuse events over 14 days old
    put_days = {"old": base - 3 * day_ms, "mid": base - day_ms, "new": base}
    logs.create_log_group(logGroupName="app")
    logs.create_log_stream(logGroupName="app", logStreamName="s")
    logs.put_log_events(
        logGroupName="app",
        logStreamName="s",
        logEvents=[{"timestamp": t, "message": m} for m, t in put_days.items()],
    )
    conf = setup.config(setup.service("app", only_logs_after=day(base - day_ms)))
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ["mid", "new"]
    conf = setup.config(setup.service("app", only_logs_after=day(base - 4 * day_ms)))
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(3)
    assert setup.sink.messages() == ["mid", "new", "old"]
    assert setup.once(conf).returncode == 0
    assert len(setup.sink.received) == 3
    logs.put_log_events(
        logGroupName="app",
        logStreamName="s",
        logEvents=[
            {"timestamp": base + 2 * day_ms, "message": "skipped"},
            {"timestamp": base + 4 * day_ms, "message": "later"},
        ],
    )
    conf = setup.config(setup.service("app", only_logs_after=day(base + 3 * day_ms)))
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(4)
    assert setup.sink.messages() == ["mid", "new", "old", "later"]


def test_discard_regex_whole_message_and_field(setup: Setup) -> None:
    """discard_regex drops matches from the message start, or by a JSON field."""
    logs = setup.moto.client()
    events = [
        "DEBUG noisy",
        "INFO keep",
        "None of this is dropped",
        json.dumps({"level": "debug", "detail": {"kind": "x"}}),
        json.dumps({"level": "info", "detail": {"kind": "skipme"}}),
    ]
    seed(logs, "app", {"s": events})
    seed(logs, "json", {"s": events})
    seed(logs, "plain", {"s": events})
    by_field = setup.service("json", discard_regex="skip").replace(
        "<discard_regex>", '<discard_regex field="detail.kind">'
    )
    services = setup.service("app", discard_regex="DEBUG") + by_field + setup.service("plain")
    conf = setup.config(services)
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(5 - 1 + 5 - 1 + 5)
    got = setup.sink.messages()
    assert got.count("DEBUG noisy") == 2
    assert got.count(events[4]) == 2
    assert got.count("None of this is dropped") == 3
    assert len(got) == 13


def test_several_regions_each_collected_and_kept_apart(setup: Setup) -> None:
    """The same group name in two regions is collected in both, with separate state."""
    seed(setup.moto.client(region="us-east-1"), "app", {"s": ["east"]})
    seed(setup.moto.client(region="eu-west-1"), "app", {"s": ["west"]})
    conf = setup.config(setup.service("app", regions="us-east-1 , eu-west-1"))
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["east", "west"]
    with sqlite3.connect(setup.state) as db:
        rows = db.execute("SELECT region FROM cursors ORDER BY region").fetchall()
    assert rows == [("eu-west-1",), ("us-east-1",)]


def test_missing_group_beside_a_good_one(setup: Setup) -> None:
    """A missing group fails with its account, region and name; the good one is collected."""
    seed(setup.moto.client(), "good", {"s": ["ok1", "ok2"]})
    conf = setup.config(setup.service("missing,good"))
    result = setup.once(conf)
    assert result.returncode == 1
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ["ok1", "ok2"]
    line = next(x for x in result.stderr.splitlines() if "missing" in x and "ERROR" in x)
    assert "123456789012" in line
    assert "us-east-1" in line


def test_all_regions_when_none_configured(setup: Setup) -> None:
    """No regions: every region of the partition is searched; absent ones are skipped."""
    seed(setup.moto.client(region="ap-southeast-2"), "app", {"s": ["down under"]})
    conf = setup.config(setup.service("app", regions=""))
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["down under"]
    skipped = [x for x in result.stderr.splitlines() if "skipped" in x]
    assert len(skipped) > 10
    assert all("ERROR" not in x for x in skipped)


def test_an_outage_leaves_the_cursor_and_loses_nothing(setup: Setup) -> None:
    """An unreachable endpoint fails the run and leaves the group's cursor in place; the
    next run sends what arrived meanwhile, and nothing twice."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"keep": ["k"], "drop": ["d"]})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    logs.delete_log_stream(logGroupName="app", logStreamName="drop")
    with sqlite3.connect(setup.state) as db:
        before = db.execute("SELECT fence, newest_ts FROM cursors").fetchall()
    dead = setup.config(
        setup.service("app").replace(setup.moto.url, "http://127.0.0.1:9"), name="dead.conf"
    )
    result = setup.once(dead, env=cli_env(AWS_MAX_ATTEMPTS="2"))
    assert result.returncode == 1
    with sqlite3.connect(setup.state) as db:
        assert db.execute("SELECT fence, newest_ts FROM cursors").fetchall() == before
    put(logs, "app", "keep", ["k2"], first + 5)
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(3)
    assert sorted(setup.sink.messages()) == ["d", "k", "k2"]


def test_remove_log_streams_deletes_only_idle_collected_streams(setup: Setup) -> None:
    """Streams are deleted once forwarded and idle; recent streams wait for --remove-idle."""
    logs = setup.moto.client()
    seed(logs, "app", {"s1": ["one"], "s2": ["two", "three"]})
    conf = setup.config(setup.service("app", remove_log_streams="yes"))
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    assert len(logs.describe_log_streams(logGroupName="app")["logStreams"]) == 2
    result = setup.once(conf, "--remove-idle", "0")
    assert result.returncode == 0, result.stderr
    assert logs.describe_log_streams(logGroupName="app")["logStreams"] == []
    setup.sink.wait_for(3)
    assert sorted(setup.sink.messages()) == ["one", "three", "two"]
    with sqlite3.connect(setup.state) as db:
        assert db.execute("SELECT count(*) FROM streams").fetchone() == (0,)


def test_first_collection_with_deletion_sends_everything_first(setup: Setup) -> None:
    """With no idle margin, a single run forwards every event before deleting its stream."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i}": [f"m{i}-{j}" for j in range(30)] for i in range(3)})
    conf = setup.config(setup.service("app", remove_log_streams="yes"))
    result = setup.once(conf, "--remove-idle", "0")
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(90)
    assert len(setup.sink.received) == 90
    assert logs.describe_log_streams(logGroupName="app")["logStreams"] == []


def test_new_stream_in_a_known_group_is_read_from_its_start(setup: Setup) -> None:
    """A stream that appears after the first run is read in full, without only_logs_after."""
    logs = setup.moto.client()
    seed(logs, "app", {"s1": ["first"]})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    seed(logs, "app", {"s2": ["second-a", "second-b"]}, start=now_ms() - 120_000)
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(3)
    assert setup.sink.messages() == ["first", "second-a", "second-b"]


def test_role_is_assumed_through_the_sts_endpoint(setup: Setup) -> None:
    """iam_role_arn assumes the role through sts_endpoint and collects with it."""
    seed(setup.moto.client(), "app", {"s": ["via role"]})
    conf = setup.config(
        setup.service(
            "app",
            iam_role_arn="arn:aws:iam::123456789012:role/log-reader",
            iam_role_duration="900",
        )
    )
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["via role"]


def test_missing_profile_is_a_clear_failure(setup: Setup) -> None:
    """A profile that does not exist fails that service with a clear line, no traceback."""
    conf = setup.config(setup.service("app", aws_profile="nosuchprofile"))
    result = setup.once(conf)
    assert result.returncode == 1
    assert "nosuchprofile" in result.stderr
    assert "Traceback" not in result.stderr
