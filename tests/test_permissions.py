"""What an operator meets on a real host: files and sockets that refuse us, a manager that
stays away, and the lines the journal gets for them.

Permissions are real: as root, the command runs with every capability dropped (setpriv), so
that file modes bind it as they bind any user; as another user, chmod alone does it. Tests
that need a file of another owner (chown) run as root only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_FLAGS, Setup, cli_env, seed

ROOT_ONLY = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
SETPRIV = shutil.which("setpriv")
STRANGER = 12345  # a uid and gid that own nothing else here


def command(*args: str) -> list[str]:
    """``aws-wodle ARGS`` without the privileges that would override file modes."""
    line = [sys.executable, "-m", "aws_wodle", *args]
    if os.geteuid() != 0:
        return line
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's capabilities")
    return [SETPRIV, "--bounding-set=-all", "--inh-caps=-all", "--", *line]


def unprivileged(*args: str, timeout: float = 120) -> Any:
    """Run ``aws-wodle ARGS`` as ``command`` builds it; returns the CompletedProcess."""
    return subprocess.run(
        command(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def run_args(setup: Setup, config: Path, *extra: str) -> list[str]:
    return [
        "run", "--once", "--config", str(config), "--queue", setup.sink.path,
        "--state", setup.state, *TEST_FLAGS, *extra,
    ]  # fmt: skip


def errors(stderr: str) -> list[str]:
    """The lines at error priority (syslog format: ``<3>`` first)."""
    return [line for line in stderr.splitlines() if line.startswith("<3>")]


def seeded(setup: Setup, count: int = 5) -> Path:
    seed(setup.moto.client(), "app", {"s": [f"event-{i}" for i in range(count)]})
    return setup.config(setup.service("app"))


# The manager's queue socket (src/aws_wodle/forward.py) --------------------------------------


def test_a_queue_socket_that_refuses_us_is_one_clear_line_not_an_outage(setup: Setup) -> None:
    """A queue socket whose mode refuses us (EACCES) ends run --once at once with exit 1 and
    an error line naming the socket and the fix; it is not waited out, nothing is lost."""
    config = seeded(setup)
    if os.geteuid() == 0:
        os.chown(setup.sink.path, STRANGER, STRANGER)  # 0755 by umask: others may not write
    else:
        os.chmod(setup.sink.path, 0)
    started = time.monotonic()
    result = unprivileged(*run_args(setup, config, "--queue-wait", "60s"))
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < 30, "EACCES was waited out like an outage"
    assert "Traceback" not in result.stderr
    assert "holding events" not in result.stderr
    named = [line for line in errors(result.stderr) if setup.sink.path in line]
    assert named, result.stderr
    assert "EACCES" in named[0]
    assert "sudo -u" in named[0] if os.geteuid() == 0 else "chmod" in named[0]
    if os.geteuid() == 0:
        os.chown(setup.sink.path, 0, 0)
    os.chmod(setup.sink.path, 0o660)
    again = unprivileged(*run_args(setup, config))
    assert again.returncode == 0, again.stderr
    setup.sink.wait_for(5)
    assert sorted(setup.sink.messages()) == [f"event-{i}" for i in range(5)]


def test_run_once_gives_up_on_a_missing_queue_after_queue_wait(setup: Setup) -> None:
    """No queue socket: run --once waits --queue-wait, then exits 1 with an error line that
    names the socket and the option; the next run sends everything."""
    config = seeded(setup)
    setup.sink.unbind()
    started = time.monotonic()
    result = unprivileged(*run_args(setup, config, "--queue-wait", "2s"))
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert 2 <= took < 30
    assert "Traceback" not in result.stderr
    named = [line for line in errors(result.stderr) if setup.sink.path in line]
    assert named, result.stderr
    assert "ENOENT" in named[0]
    assert "--queue-wait" in named[0]
    setup.sink.bind()
    again = unprivileged(*run_args(setup, config))
    assert again.returncode == 0, again.stderr
    setup.sink.wait_for(5)
    assert sorted(setup.sink.messages()) == [f"event-{i}" for i in range(5)]


def test_run_once_stopped_while_the_queue_is_away_exits_143(setup: Setup) -> None:
    """SIGTERM while run --once waits for the manager: it stops at once, with 143 as any
    interrupted run --once (128 + SIGTERM), and says events were not all sent."""
    config = seeded(setup)
    setup.sink.unbind()
    proc = subprocess.Popen(
        command(*run_args(setup, config)), env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(setup.state) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # reading is done; it waits on the queue
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert any("every event" in line for line in errors(stderr)), stderr


def test_run_default_queue_wait_is_60_seconds() -> None:
    """--queue-wait is offered by run, with its 60 s default in the help."""
    result = unprivileged("run", "--help")
    assert "--queue-wait" in result.stdout
    assert "60s" in result.stdout


# What the journal gets (src/aws_wodle/cli.py, run) -----------------------------------------


def test_run_config_errors_carry_the_error_priority(tmp_path: Path, setup: Setup) -> None:
    """run's FILE:LINE errors start with <3> for the journal (syslog format, the default off
    a terminal), stay bare with plain, and are JSON objects of priority 3 with json."""
    config = tmp_path / "ossec.conf"
    config.write_text(
        '<ossec_config>\n<wodle name="aws-s3">\n  <interval>often</interval>\n</wodle>\n'
        "</ossec_config>\n"
    )
    syslog = unprivileged(*run_args(setup, config))
    assert syslog.returncode == 2
    assert syslog.stderr.splitlines()[0].startswith(f"<3>{config}:")
    plain = unprivileged(*run_args(setup, config, "--log-format", "plain"))
    assert plain.stderr.splitlines()[0].startswith(f"{config}:")
    as_json = unprivileged(*run_args(setup, config, "--log-format", "json"))
    first = json.loads(as_json.stderr.splitlines()[0])
    assert first["priority"] == 3
    assert first["message"].startswith(f"{config}:")


# The state file and its directory (src/aws_wodle/state.py; expectations for its rewrite) ----


def collected(setup: Setup) -> Path:
    """A state file from a first, successful run, closed cleanly."""
    config = seeded(setup)
    first = unprivileged(*run_args(setup, config))
    assert first.returncode == 0, first.stderr
    return config


def refused_clearly(result: Any, path: str) -> None:
    """Exit 1, no traceback, and an error line that names ``path`` and a fix."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    named = [line for line in errors(result.stderr) if path in line]
    assert named, result.stderr
    assert any(fix in named[0] for fix in ("chown", "sudo -u", "chmod")), named[0]


def test_a_read_only_state_file_is_one_clear_line_and_kept(setup: Setup) -> None:
    """A state file we may read but not write: exit 1 with a line naming it and the fix;
    the file is neither moved aside nor changed."""
    config = collected(setup)
    state = Path(setup.state)
    before = state.read_bytes()
    state.chmod(0o444)
    result = unprivileged(*run_args(setup, config))
    refused_clearly(result, setup.state)
    assert not list(state.parent.glob("state.db.unusable*"))
    assert state.read_bytes() == before


@ROOT_ONLY
def test_a_state_file_of_another_user_is_one_clear_line_and_kept(setup: Setup) -> None:
    """A state file another user owns (mode 0600): exit 1, a line naming it and the fix."""
    config = collected(setup)
    state = Path(setup.state)
    for path in (state, Path(f"{state}.lock")):
        os.chown(path, STRANGER, STRANGER)
        path.chmod(0o600)
    result = unprivileged(*run_args(setup, config))
    refused_clearly(result, setup.state)
    assert not list(state.parent.glob("state.db.unusable*"))


def test_a_read_only_state_directory_is_one_clear_line(setup: Setup, tmp_path: Path) -> None:
    """A state directory we may not write (no state file yet): exit 1, a line naming the
    directory and the fix."""
    config = seeded(setup)
    folder = tmp_path / "readonly"
    folder.mkdir(mode=0o555)
    result = unprivileged(
        "run", "--once", "--config", str(config), "--queue", setup.sink.path,
        "--state", str(folder / "state.db"), *TEST_FLAGS,
    )  # fmt: skip
    refused_clearly(result, str(folder))


@ROOT_ONLY
def test_a_state_directory_of_another_user_is_one_clear_line(setup: Setup, tmp_path: Path) -> None:
    """A state directory another user owns (mode 0700): exit 1, a line naming it and the fix."""
    config = seeded(setup)
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, STRANGER, STRANGER)
    result = unprivileged(
        "run", "--once", "--config", str(config), "--queue", setup.sink.path,
        "--state", str(folder / "state.db"), *TEST_FLAGS,
    )  # fmt: skip
    refused_clearly(result, str(folder))


def test_status_reads_a_state_it_may_only_read(setup: Setup) -> None:
    """status needs read access only: a read-only state file in a read-only directory is
    shown, stream by stream, and left as it was."""
    collected(setup)
    state = Path(setup.state)
    state.chmod(0o444)
    state.parent.chmod(0o555)
    try:
        result = unprivileged("status", "--state", setup.state)
        listing = sorted(p.name for p in state.parent.iterdir())
    finally:
        state.parent.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "app" in result.stdout
    assert "Traceback" not in result.stderr
    assert not any(name.startswith("state.db.unusable") for name in listing)
