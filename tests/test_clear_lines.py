"""Mistakes on the command line get one clear line, never a traceback nor a false outage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aws_wodle.poll.progress import Progress, remaining_seconds
from aws_wodle.store.state import StateStore
from conftest import TEST_FLAGS, Setup, cli_env, now_ms, put, run_cli, seed
from test_import_state import ACCOUNT, DAY_MS, old_db, run_import
from test_legacy import lines, old_args, run_legacy

PATIENT = (
    "import sys; from aws_wodle.runtime.legacy import main; "
    "sys.exit(main(sys.argv[1:], queue_wait=0.5))"
)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_state_naming_a_directory_is_one_line_for_run_and_status(setup: Setup) -> None:
    """--state naming a directory: run and status each say so in one line, naming a file."""
    folder = setup.folder / "statedir"
    folder.mkdir()
    config = setup.config(setup.service("app"))
    run = run_cli("run", "--once", "--config", str(config), "--queue", setup.sink.path,
                  "--state", str(folder), *TEST_FLAGS)  # fmt: skip
    status = run_cli("status", "--state", str(folder))
    for result in (run, status):
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        said = _error_lines(result.stderr)
        assert len(said) == 1, said
        assert f"{folder} is a directory" in said[0]
        assert f"{folder}/state.db" in said[0]


def test_status_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """status --json into a pipe whose reader left (| head -1) ends without a traceback."""
    state = tmp_path / "state.db"
    StateStore(state).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "status", "--json", "--state", str(state)],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert err == ""
    assert proc.returncode == 141


def _wrong_queue(kind: str, folder: Path) -> tuple[Path, socket.socket | None]:
    path = folder / f"q-{kind}"
    if kind == "directory":
        path.mkdir()
        return path, None
    if kind == "regular file":
        path.write_text("")
        return path, None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    return path, listener


@pytest.mark.parametrize("kind", ["directory", "regular file", "stream socket"])
def test_queue_that_is_no_datagram_socket_is_an_error_at_once(setup: Setup, kind: str) -> None:
    """--queue naming a directory, a file or a stream socket: run --once, the daemon and
    legacy stop at once with one line naming the path and what it is, not an outage."""
    seed(setup.moto.client(), "app", {"s": ["e0"]})
    path, listener = _wrong_queue(kind, setup.folder)
    config = setup.config(setup.service("app"))
    common = ("--config", str(config), "--queue", str(path), "--state", setup.state)
    try:
        started = time.monotonic()
        once = run_cli("run", "--once", *common, *TEST_FLAGS, "--queue-wait", "30s")
        daemon = run_cli("run", *common, *TEST_FLAGS, timeout=60)
        took = time.monotonic() - started
        legacy = run_legacy(*old_args(setup, "app", paths=False), "--queue", str(path),
                            "--state", setup.state, code=PATIENT)  # fmt: skip
    finally:
        if listener is not None:
            listener.close()
    assert took < 25, took  # neither waited for the manager
    wanted = f"manager queue {path} is a {kind}, not a datagram socket"
    for result in (once, daemon):
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert wanted in result.stderr, result.stderr
        assert "ECONNREFUSED" not in result.stderr
        assert "is the manager running" not in result.stderr
    assert legacy.returncode == 13, legacy.stdout
    errors = lines(legacy.stdout, "ERROR: ")
    assert len(errors) == 1, legacy.stdout
    assert wanted in errors[0]


def test_legacy_missing_queue_says_enoent_to_the_last_line(setup: Setup) -> None:
    """legacy with no queue socket: the warnings and the final ERROR line give one reason."""
    seed(setup.moto.client(), "app", {"s": ["e0"]})
    away = setup.sink.path + "-away"
    args = [*old_args(setup, "app", paths=False), "--queue", away, "--state", setup.state]
    result = run_legacy(*args, code=PATIENT)
    assert result.returncode == 11, result.stdout
    last = lines(result.stdout, "ERROR: ")[-1]
    assert "(ENOENT)" in last, result.stdout
    assert "ECONNREFUSED" not in result.stdout


def test_queue_wait_is_read_from_the_settings_file(setup: Setup) -> None:
    """queue_wait in aws-wodle.toml is used by run --once (no longer an unknown setting)."""
    seed(setup.moto.client(), "app", {"s": ["e0"]})
    config = setup.config(setup.service("app"))
    settings = setup.folder / "aws-wodle.toml"
    settings.write_text('queue_wait = "1s"\n')
    settings.chmod(0o600)
    started = time.monotonic()
    result = run_cli("run", "--once", "--config", str(config), "--queue",
                     setup.sink.path + "-away", "--state", setup.state, *TEST_FLAGS,
                     timeout=50)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "after 1 s (--queue-wait 1s)" in result.stderr, result.stderr
    assert time.monotonic() - started < 30


def test_a_group_rule_fitting_no_configured_group_is_warned_about(setup: Setup) -> None:
    """A [[group]] whose match fits none of ossec.conf's groups: a FILE:LINE warning from
    check-config and at the start of a run; a fitting one is not warned about."""
    seed(setup.moto.client(), "app", {"s": ["e0"]})
    config = setup.config(setup.service("app,/aws/lambda/*"))
    settings = setup.folder / "aws-wodle.toml"
    settings.write_text(
        '[[group]]\nmatch = "ap"\nenvelope = true\n\n'
        '[[group]]\nmatch = "/aws/lambda/billing"\nenvelope = true\n\n'
        '[[group]]\nmatch = "app"\nenvelope = true\n'
    )
    settings.chmod(0o600)
    check = run_cli("check-config", "--config", str(config))
    run = setup.once(config)
    for result in (check, run):
        assert result.returncode == 0, result.stderr
        warned = [line for line in result.stderr.splitlines() if "fits no log group" in line]
        assert len(warned) == 1, result.stderr
        assert f"{settings}:1: [[group]] match 'ap' fits no log group" in warned[0]


def test_status_shows_imported_positions_before_the_first_collection(setup: Setup) -> None:
    """After import-state, status lists the imported groups and stream positions as
    imported, not collected (text and --json), until a collection uses them."""
    base = now_ms() - 2 * DAY_MS
    path = old_db(
        setup.folder / "aws_services.db",
        [
            ("us-east-1", "app", "s", None, base, base + 2),
            ("us-east-1", "app", "t", None, base, base + 7),
        ],
    )
    imported = run_import(path, "--state", setup.state, "--sts-endpoint", setup.moto.url)
    assert imported.returncode == 0, imported.stderr
    text = run_cli("status", "--streams", "--state", setup.state)
    assert text.returncode == 0, text.stderr
    assert "imported by import-state, not collected yet" in text.stdout
    up_to = datetime.fromtimestamp((base + 7) / 1000, tz=timezone.utc)
    sent = up_to.isoformat(timespec="milliseconds")
    rows = [line.split() for line in text.stdout.splitlines()]
    assert [ACCOUNT, "us-east-1", "app", "2", sent] in rows, text.stdout
    assert [ACCOUNT, "us-east-1", "app", "t", sent] in rows, text.stdout
    doc = json.loads(run_cli("status", "--json", "--state", setup.state).stdout)
    assert doc["imported"] == [
        {"account": ACCOUNT, "region": "us-east-1", "group": "app", "streams": 2,
         "covered_from": datetime.fromtimestamp(base / 1000, tz=timezone.utc).isoformat(
             timespec="milliseconds"),
         "sent_up_to": sent, "collected": False}
    ]  # fmt: skip
    seed(setup.moto.client(), "app", {"s": ["e0"]})
    assert setup.once(setup.config(setup.service("app"))).returncode == 0
    after = run_cli("status", "--state", setup.state)
    assert "imported by import-state" not in after.stdout
    assert "imported" not in json.loads(run_cli("status", "--json", "--state", setup.state).stdout)


def test_progress_estimates_wall_time_from_the_pace_not_the_log_time_left() -> None:
    """A read with 9 minutes of log time left, 3/4 done in 9 s, shows about 3 s to go
    (not 9m); before there is a pace, it shows no remaining time at all."""
    log_now = [1_000_000.0]
    wall = [50.0]
    progress = Progress(clock=lambda: log_now[0], wall=lambda: wall[0])
    progress.begin()
    minute = 60_000
    start = int(log_now[0] * 1000) - 36 * minute
    progress.moved("a", start, 10)
    wall[0] += 1.0
    assert "to go" not in progress.bar(8)  # no pace yet
    progress.moved("a", start + 27 * minute, 300)
    wall[0] += 8.0
    assert progress.bar(8) == "[######..]  75% 310 events, 9m of log time left, about 3s to go"
    assert progress.line().endswith("(75%), about 3s to go")
    assert remaining_seconds(0.5, 1.0) is None
    assert remaining_seconds(0.005, 60.0) is None
    assert remaining_seconds(0.25, 10.0) == 30.0
    assert remaining_seconds(1.0, 10.0) == 0.0


def test_legacy_debug_lines_tell_the_truth(setup: Setup) -> None:
    """legacy --debug 2: no "line 0" (the service is the command line's), the streams that
    sent events are counted, and an event a day late is not "close to the lookback"."""
    logs = setup.moto.client()
    seed(logs, "app", {f"s{i}": [f"e{i}"] for i in range(3)})
    put(logs, "app", "s0", ["a-day-late"], now_ms() - DAY_MS)
    result = run_legacy(*old_args(setup, "app", "--debug", "2"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "line 0" not in out, out
    finished = [line for line in out.splitlines() if "finished in" in line]
    assert len(finished) == 1, out
    assert "3 streams sent events" in finished[0], out
    assert "close to the lookback" not in out, out
    late = [line for line in out.splitlines() if "later than the lookback of 900 s" in line]
    assert len(late) == 1, out
    assert late[0].startswith("WARNING: "), late
