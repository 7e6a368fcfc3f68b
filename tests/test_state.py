"""The state file: group cursors survive reopening, and a version 1 file is carried over."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aws_wodle.model import Boundary, Cursor, Cycle, Gap, GroupKey, LogEvent, Sent
from aws_wodle.poll import boundary
from aws_wodle.store.state import StateStore, read_status
from conftest import Setup, put, seed

ACCOUNT = "123456789012"
KEY = GroupKey(ACCOUNT, "us-east-1", "app")

# The streams table of state files written by aws-wodle 0.1 (schema version 1).
V1_STREAMS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE streams (
    account TEXT NOT NULL, region TEXT NOT NULL, log_group TEXT NOT NULL, stream TEXT NOT NULL,
    covered_from INTEGER NOT NULL, last_ts INTEGER, boundary TEXT NOT NULL DEFAULT '[]',
    token TEXT, token_start INTEGER, token_saved REAL, last_ingestion INTEGER,
    gap_from INTEGER, gap_until INTEGER, gap_boundary TEXT NOT NULL DEFAULT '[]',
    checked_ingestion INTEGER, last_read REAL, reported_last_event INTEGER,
    events INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, last_collected REAL,
    PRIMARY KEY (account, region, log_group, stream));
CREATE TABLE groups (account TEXT NOT NULL, region TEXT NOT NULL, log_group TEXT NOT NULL,
    default_start INTEGER NOT NULL, PRIMARY KEY (account, region, log_group));
CREATE TABLE identities (credentials TEXT PRIMARY KEY, account TEXT NOT NULL);
"""


def test_cursor_and_counters_survive_reopening(tmp_path: Path) -> None:
    """A cursor with a read and a backfill under way, and per-stream counters, read back
    the same after the file is closed and opened again."""
    path = tmp_path / "state.db"
    cursor = Cursor(
        covered_from=10,
        fence=500,
        newest_ts=480,
        newest_ingestion=499,
        cycle=Cycle(lo=100, fence=900, mark=Boundary(700, ("ab", "ab", "cd"))),
        gap=Gap(start=1, until=10, fence=500, mark=Boundary(5, ("ef",))),
    )
    state = StateStore(path)
    state.save(KEY, cursor, {"s1": Sent(3, 30, 480, 499), "s2": Sent(1, 5, 470, 490)})
    state.save(KEY, cursor, {"s1": Sent(2, 20, 481, 498)})
    state.close()
    state = StateStore(path)
    try:
        assert state.cursor(KEY) == cursor
        records = {r.key.stream: r for r in state.all_records()}
        assert (records["s1"].events, records["s1"].bytes) == (5, 50)
        assert (records["s1"].newest_ts, records["s1"].newest_ingestion) == (481, 499)
    finally:
        state.close()
    groups, streams, failures = read_status(path, streams=True)
    assert [(g.key, g.events, g.streams) for g in groups] == [(KEY, 6, 2)]
    assert streams is not None
    assert len(streams) == 2
    assert failures == []


def test_a_cursor_and_its_counters_commit_together(tmp_path: Path) -> None:
    """The cursors part and the streams part write in one transaction: a stream counter
    that cannot be written leaves the group's cursor and counters as they were."""
    path = tmp_path / "state.db"
    before = Cursor(covered_from=10, fence=500)
    state = StateStore(path)
    try:
        state.save(KEY, before, {"s1": Sent(1, 10, 480, 499)})
        after = Cursor(covered_from=10, fence=900)
        with pytest.raises(OverflowError):
            state.cursors.save(KEY, after, {"s1": Sent(1, 10, 2**70, 499)})
        assert state.cursor(KEY) == before
        (record,) = state.streams.records()
        assert (record.events, record.newest_ts) == (1, 480)
    finally:
        state.close()
    groups, _, _ = read_status(path)
    assert [(g.key, g.cursor, g.events) for g in groups] == [(KEY, before, 1)]


def test_version_1_file_becomes_seeds_and_counters(tmp_path: Path) -> None:
    """A version 1 file's per-stream positions become the seeds of each group's first read
    and its counters are kept; the file is then at version 2."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(V1_STREAMS)
    marks = json.dumps([boundary.stream_digest(LogEvent(2000, "x", 0))])
    db.execute(
        "INSERT INTO streams (account, region, log_group, stream, covered_from, last_ts, "
        "boundary, events, bytes) VALUES (?, 'us-east-1', 'app', 's', 1000, 2000, ?, 7, 70)",
        (ACCOUNT, marks),
    )
    db.execute("INSERT INTO identities VALUES ('default-chain', ?)", (ACCOUNT,))
    db.commit()
    db.close()
    state = StateStore(path)
    try:
        assert state.seeds(KEY) == {"s": Boundary(2000, tuple(json.loads(marks)))}
        assert state.cursor(KEY) is None
        (record,) = state.all_records()
        assert (record.key.stream, record.events, record.bytes) == ("s", 7, 70)
        assert state.remembered_account("default-chain") == ACCOUNT
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == ("2",)


def test_upgrade_from_version_1_repeats_nothing(setup: Setup) -> None:
    """Collection over a version 1 file resumes where each stream stood: events already
    sent (the twins at the last millisecond included) are not sent again."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["a", "b", "c"]})
    put(logs, "app", "s", ["c-twin"], first + 2)
    db = sqlite3.connect(setup.state)
    db.executescript(V1_STREAMS)
    sent = [LogEvent(first + 2, "c", 0), LogEvent(first + 2, "c-twin", 0)]
    db.execute(
        "INSERT INTO streams (account, region, log_group, stream, covered_from, last_ts, "
        "boundary) VALUES (?, 'us-east-1', 'app', 's', ?, ?, ?)",
        (ACCOUNT, first - 1000, first + 2, json.dumps([boundary.stream_digest(e) for e in sent])),
    )
    db.execute("INSERT INTO groups VALUES (?, 'us-east-1', 'app', ?)", (ACCOUNT, first - 1000))
    db.commit()
    db.close()
    put(logs, "app", "s", ["d"], first + 3)
    put(logs, "app", "s", ["c-late-twin"], first + 2)
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["c-late-twin", "d"]


def test_status_loads_no_aws_library() -> None:
    """status starts fast at any size: the command line loads boto3 only to collect."""
    code = (
        "import sys\n"
        "from aws_wodle.runtime import cli\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 's3transfer'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
