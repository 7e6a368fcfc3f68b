"""import-state: the old module's aws_services.db in, each stream resumed where it stopped."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_wodle.model import Boundary, GroupKey
from aws_wodle.store.migrate import ImportResult, import_state
from aws_wodle.store.state import StateStore, StreamKey
from conftest import Setup, cli_env, now_ms, put, seed
from support.ownerdir import SERVICE_UID, needs_root

IMPORT = (
    "import sys; from aws_wodle.runtime.cli import main; "
    "sys.exit(main(['import-state', *sys.argv[1:]]))"
)
ACCOUNT = "123456789012"  # moto's account
DAY_MS = 86_400_000

# The old module's table, as its cloudwatchlogs service creates it.
OLD_SCHEMA = """
CREATE TABLE metadata (key 'text' NOT NULL, value 'text' NOT NULL, PRIMARY KEY (key, value));
INSERT INTO metadata (key, value) VALUES ('version', '4.9.0');
CREATE TABLE cloudwatch_logs (
    aws_region 'text' NOT NULL,
    aws_log_group 'text' NOT NULL,
    aws_log_stream 'text' NOT NULL,
    next_token 'text',
    start_time 'integer',
    end_time 'integer',
    PRIMARY KEY (aws_region, aws_log_group, aws_log_stream));
"""

Row = tuple[str, str, str, object, object, object]


def old_db(path: Path, rows: list[Row]) -> str:
    """Write an old-style aws_services.db holding these cloudwatch_logs rows."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany("INSERT INTO cloudwatch_logs VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return str(path)


def run_import(*args: str) -> Any:
    """Run import-state as a real process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", IMPORT, *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cursor_of(path: str) -> object:
    """The cursor of group app in us-east-1."""
    state = StateStore(path)
    try:
        return state.cursor(GroupKey(ACCOUNT, "us-east-1", "app"))
    finally:
        state.close()


def put_at(logs: Any, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Put events with explicit timestamps (several may share one)."""
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": m} for ts, m in events],
    )


def test_collection_resumes_exactly_after_the_old_end_time(setup: Setup) -> None:
    """After import, only events after end_time are sent, none of those at end_time, even
    days later and without only_logs_after; a row without end_time resumes at start_time."""
    logs = setup.moto.client()
    base = now_ms() - 2 * DAY_MS
    seed(logs, "app", {"s": [], "t": [], "v": []})
    stream_s = [(base, "old-0"), (base + 1, "old-1"), (base + 2, "end-a"), (base + 2, "end-b")]
    stream_s += [(base + 3, "new-0"), (base + 9, "new-1")]
    put_at(logs, "app", "s", stream_s)
    put_at(logs, "app", "t", [(base + 5, "t-0")])
    put_at(logs, "app", "v", [(base + 1, "v-0")])
    path = old_db(
        setup.folder / "aws_services.db",
        [
            ("us-east-1", "app", "s", "f/3719/s", base, base + 2),
            ("us-east-1", "app", "t", None, base, None),
            ("us-east-1", "app", "u", "None", "None", "None"),
        ],
    )
    result = run_import(path, "--state", setup.state, "--sts-endpoint", setup.moto.url)
    assert result.returncode == 0, result.stderr
    assert "imported 2 streams" in result.stdout
    assert "1 bad rows" in result.stdout
    assert f"account {ACCOUNT}" in result.stdout
    assert "app / u" in result.stderr
    run = setup.once(setup.config(setup.service("app")))
    assert run.returncode == 0, run.stderr
    setup.sink.wait_for(4)
    got = setup.sink.messages()
    assert sorted(got) == ["new-0", "new-1", "t-0", "v-0"]
    assert got.index("new-0") < got.index("new-1")
    assert setup.once(setup.config(setup.service("app"))).returncode == 0
    assert len(setup.sink.received) == 4


def test_a_stream_already_in_our_state_is_kept(setup: Setup) -> None:
    """A stream we already collected keeps our position: nothing is sent twice."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["e0", "e1", "e2"]})
    conf = setup.config(setup.service("app"))
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(3)
    ours = cursor_of(setup.state)
    path = old_db(setup.folder / "old.db", [("us-east-1", "app", "s", "tok", first, first)])
    result = run_import(path, "--state", setup.state, "--account", ACCOUNT)
    assert result.returncode == 0, result.stderr
    assert "imported 0 streams" in result.stdout
    assert "1 already there" in result.stdout
    assert cursor_of(setup.state) == ours
    put(logs, "app", "s", ["e3"], first + 3)
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(4)
    assert setup.sink.messages() == ["e0", "e1", "e2", "e3"]


def test_missing_table_file_or_bad_arguments_fail_clearly(setup: Setup) -> None:
    """No table, no file, not SQLite: one error line, exit 1; a bad --account exits 2."""
    other = setup.folder / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE cloudtrail (bucket_path TEXT)")
    db.commit()
    db.close()
    text = setup.folder / "notes.txt"
    text.write_text("not a database\n" * 100)
    for path, words in (
        (other, "no cloudwatch_logs table"),
        (setup.folder / "missing.db", "no such file"),
        (text, "not a database"),
    ):
        result = run_import(str(path), "--state", setup.state, "--account", ACCOUNT)
        assert result.returncode == 1, (path, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert words in result.stderr
        assert "Traceback" not in result.stderr
    assert not Path(setup.state).exists()
    bad = run_import(str(other), "--state", setup.state, "--account", "12")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_state_in_use_fails_clearly(setup: Setup) -> None:
    """A state file held by a running collector is one error line and exit 1."""
    path = old_db(setup.folder / "old.db", [("us-east-1", "app", "s", None, 1, 2)])
    holder = StateStore(setup.state)
    try:
        result = run_import(path, "--state", setup.state, "--account", ACCOUNT)
    finally:
        holder.close()
    assert result.returncode == 1
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_state_positions_and_counts(tmp_path: Path) -> None:
    """import_state writes the boundary-marked positions and counts; a re-run skips all."""
    path = old_db(
        tmp_path / "old.db",
        [
            ("us-east-1", "g", "a", "tok", 1000, 5000),
            ("us-east-1", "g", "b", None, "2000", None),
            ("eu-west-1", "g", "a", None, 3000, 2000),
        ],
    )
    state = StateStore(tmp_path / "state.db")
    try:
        first = import_state(path, state, ACCOUNT)
        assert (first.imported, first.skipped, first.bad) == (2, 0, 1)
        a = state.seed(StreamKey(ACCOUNT, "us-east-1", "g", "a"))
        b = state.seed(StreamKey(ACCOUNT, "us-east-1", "g", "b"))
        assert a == (1000, Boundary(5000, (Boundary.ALL,)))
        assert b == (2000, Boundary())
        assert state.seeds(GroupKey(ACCOUNT, "us-east-1", "g")) == {"a": Boundary(5000, ("*",))}
        assert state.group_default_start(ACCOUNT, "us-east-1", "g", 9999) == 1000
        again = import_state(path, state, ACCOUNT)
        assert again == ImportResult(0, 2, 1, again.problems)
    finally:
        state.close()


# Run as root, the state must stay the service user's ----------------------------------------


@needs_root
def test_import_as_root_writes_the_state_as_the_directory_owner(service_dir: Path) -> None:
    """Run as root into a directory the service user owns, import-state writes the state
    file and its lock as that user (mode 0600), so that the service can open them."""
    path = old_db(service_dir.parent / "aws_services.db", [("us-east-1", "app", "s", None, 1, 2)])
    state = service_dir / "state.db"
    result = run_import(path, "--state", str(state), "--account", ACCOUNT)
    assert result.returncode == 0, result.stderr
    left = [p for p in service_dir.iterdir() if p.name.startswith("state.db")]
    assert {p.name for p in left} >= {"state.db", "state.db.lock"}
    for file in left:
        info = file.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (
            SERVICE_UID,
            SERVICE_UID,
            0o600,
        )
    assert "now belong to" not in result.stdout


@needs_root
def test_import_as_root_gives_roots_old_state_files_to_the_directory_owner(
    service_dir: Path,
) -> None:
    """State files that root left in the service user's directory (an older version run as
    root) are given to that user, mode 0600, and the import says so."""
    state = service_dir / "state.db"
    StateStore(str(state), lock=False).close()
    for file in service_dir.iterdir():
        os.chown(file, 0, 0)
        file.chmod(0o644)
    path = old_db(service_dir.parent / "aws_services.db", [("us-east-1", "app", "s", None, 1, 2)])
    result = run_import(path, "--state", str(state), "--account", ACCOUNT)
    assert result.returncode == 0, result.stderr
    assert "now belong to" in result.stdout
    info = state.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (SERVICE_UID, 0o600)


@needs_root
def test_import_as_root_refuses_a_missing_state_directory(tmp_path: Path) -> None:
    """Run as root with no state directory yet, import-state creates nothing and says how
    to make the directory for the service's user, or to run as that user."""
    path = old_db(tmp_path / "aws_services.db", [("us-east-1", "app", "s", None, 1000, 2000)])
    folder = tmp_path / "missing"
    result = run_import(path, "--state", str(folder / "state.db"), "--account", ACCOUNT)
    assert result.returncode == 1
    assert "install -d -o wazuh -g wazuh" in result.stderr
    assert "sudo -u wazuh aws-wodle import-state" in result.stderr
    assert not folder.exists()
