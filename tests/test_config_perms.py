"""Configuration that other users could change is refused (src/aws_wodle/config/perms.py).

Real files with real owners and modes, and real processes: as root, and as a throwaway
uid (setpriv) standing for the manager's user or an operator running aws-wodle by hand.
"""

from __future__ import annotations

import grp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aws_wodle
from conftest import Setup, cli_env, run_cli, seed, start_daemon

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
SETPRIV = shutil.which("setpriv")
STRANGER = 12345  # a uid and gid that own nothing else here
OTHER = 12346  # a second one, for a file of a user who is not the one running aws-wodle
SETTINGS = 'lookback = "5m"\n'


@pytest.fixture(scope="module")
def manager_gid() -> Iterator[int]:
    """The gid of the manager's group ``wazuh``, made for these tests if the host lacks it
    (and removed again afterwards)."""
    if "wazuh" in {group.gr_name for group in grp.getgrall()}:
        yield grp.getgrnam("wazuh").gr_gid
        return
    subprocess.run(["groupadd", "--system", "wazuh"], check=True, capture_output=True)
    try:
        yield grp.getgrnam("wazuh").gr_gid
    finally:
        subprocess.run(["groupdel", "wazuh"], check=False, capture_output=True)


def seeded(setup: Setup) -> Path:
    seed(setup.moto.client(), "app", {"s": ["one", "two"]})
    return setup.config(setup.service("app"))


def refusal(path: Path, reason: str, fix: str) -> str:
    return f"{path}: refused: other users could change it: {reason}; fix: {fix}"


def test_world_writable_ossec_conf_is_refused_before_anything_runs(setup: Setup) -> None:
    """ossec.conf at 0666: run --once exits 2 with one error line naming the file, what is
    wrong and the fix; nothing is read from AWS, forwarded or written to the state."""
    conf = seeded(setup)
    conf.chmod(0o666)
    result = setup.once(conf)
    assert result.returncode == 2, result.stderr
    expected = refusal(conf, "writable by every user (mode 0666)", f"chmod o-w {conf}")
    assert result.stderr.splitlines() == [f"<3>{expected}"]
    assert setup.sink.messages() == []
    assert not os.path.exists(setup.state)
    checked = run_cli("check-config", "--config", str(conf))
    assert checked.returncode == 2
    assert checked.stderr.splitlines() == [expected]
    assert checked.stdout == ""


def test_group_write_by_the_managers_group_is_accepted(setup: Setup, manager_gid: int) -> None:
    """ossec.conf as the manager ships it, root:wazuh 0660, is read and collected."""
    conf = seeded(setup)
    os.chown(conf, 0, manager_gid)
    conf.chmod(0o660)
    checked = run_cli("check-config", "--config", str(conf))
    assert checked.returncode == 0, checked.stderr
    assert "other users could change" not in checked.stderr
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["one", "two"]


def test_group_write_by_another_group_is_refused(setup: Setup) -> None:
    """Group write for a group that is not the manager's is refused; read alone is not."""
    conf = seeded(setup)
    os.chown(conf, 0, STRANGER)
    conf.chmod(0o660)
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 2
    expected = refusal(conf, f"writable by group {STRANGER} (mode 0660)", f"chmod g-w {conf}")
    assert result.stderr.splitlines() == [expected]
    conf.chmod(0o640)
    assert run_cli("check-config", "--config", str(conf)).returncode == 0


def test_ossec_conf_of_another_user_is_refused(setup: Setup) -> None:
    """ossec.conf owned by another non-root user, even at 0644, is refused with chown."""
    conf = seeded(setup)
    os.chown(conf, STRANGER, 0)
    conf.chmod(0o644)
    result = setup.once(conf)
    assert result.returncode == 2
    expected = refusal(conf, f"owned by uid {STRANGER}", f"chown root {conf}")
    assert result.stderr.splitlines() == [f"<3>{expected}"]
    assert setup.sink.messages() == []


@pytest.mark.parametrize(("owner", "mode"), [(0, 0o666), (STRANGER, 0o600)])
def test_settings_file_that_others_could_change_is_refused(
    setup: Setup, owner: int, mode: int
) -> None:
    """aws-wodle.toml beside ossec.conf, world-writable or of another user, is refused by
    run and by check-config with one line naming it."""
    conf = seeded(setup)
    settings = conf.with_name("aws-wodle.toml")
    settings.write_text(SETTINGS)
    os.chown(settings, owner, 0)
    settings.chmod(mode)
    result = setup.once(conf)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"<3>{settings}: refused: other users could change it: ")
    assert setup.sink.messages() == []
    checked = run_cli("check-config", "--config", str(conf))
    assert checked.returncode == 2
    assert checked.stderr.splitlines() == [line[len("<3>") :]]


def test_settings_file_of_the_managers_group_is_accepted(setup: Setup, manager_gid: int) -> None:
    """aws-wodle.toml at root:wazuh 0660 is read: check-config shows its lookback."""
    conf = seeded(setup)
    settings = conf.with_name("aws-wodle.toml")
    settings.write_text(SETTINGS)
    os.chown(settings, 0, manager_gid)
    settings.chmod(0o660)
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 0, result.stderr
    assert "lookback: 5m" in result.stdout


def test_no_strict_perms_accepts_with_a_warning(setup: Setup) -> None:
    """--no-strict-perms reads both files anyway, with one warning line for each."""
    conf = seeded(setup)
    conf.chmod(0o666)
    settings = conf.with_name("aws-wodle.toml")
    settings.write_text(SETTINGS)
    os.chown(settings, STRANGER, 0)
    checked = run_cli("check-config", "--no-strict-perms", "--config", str(conf))
    assert checked.returncode == 0, checked.stderr
    warned = [line for line in checked.stderr.splitlines() if "other users" in line]
    assert warned == [
        f"warning: {conf}: other users could change it: writable by every user (mode 0666); "
        f"fix: chmod o-w {conf} (used anyway: --no-strict-perms)",
        f"warning: {settings}: other users could change it: owned by uid {STRANGER}; "
        f"fix: chown root {settings} (used anyway: --no-strict-perms)",
    ]
    result = setup.once(conf, "--no-strict-perms")
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if "used anyway" in line]
    assert [line.startswith("<4>") for line in logged] == [True, True], result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["one", "two"]


def test_a_directory_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    """A file in a directory every user may write (so may replace the file) is refused;
    with the sticky bit, where only a file's owner may replace it, it is accepted."""
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    conf = folder / "ossec.conf"
    conf.write_text("<ossec_config>\n</ossec_config>\n")
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 2
    reason = f"its directory {folder} writable by every user (mode 0777, no sticky bit)"
    assert result.stderr.splitlines() == [refusal(conf, reason, f"chmod o-w {folder}")]
    folder.chmod(0o1777)
    assert run_cli("check-config", "--config", str(conf)).returncode == 0


def test_a_link_into_an_open_directory_is_refused(tmp_path: Path) -> None:
    """ossec.conf as a symbolic link to a file in a directory others may write: the
    directory of the file itself is judged, not only the link's."""
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    target = folder / "real.conf"
    target.write_text("<ossec_config>\n</ossec_config>\n")
    link = tmp_path / "ossec.conf"
    link.symlink_to(target)
    result = run_cli("check-config", "--config", str(link))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{link}: refused:")
    assert line.endswith(f"fix: chmod o-w {folder}")


def test_sighup_with_a_file_made_world_writable_keeps_the_config_in_use(setup: Setup) -> None:
    """A running daemon whose ossec.conf turns 0666 refuses the reload and keeps going."""
    conf = seeded(setup)
    proc = start_daemon(setup, conf)
    try:
        setup.sink.wait_for(2, timeout=30)
        conf.chmod(0o666)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert f"reload refused: {conf}: refused: other users could change it" in err


# Not root: the manager's user, or an operator with files of their own -----------------------


def closed_to_others(folder: Path) -> Path | None:
    """The first folder on the way to ``folder`` that users other than its owner and group
    may not pass through (a checkout made under ``mktemp -d``, mode 700), or None."""
    for step in (*reversed(folder.parents), folder):
        if not step.stat().st_mode & 0o001:
            return step
    return None


def as_user(uid: int, *args: str) -> Any:
    """``aws-wodle ARGS`` run as ``uid`` (its gid the same number, no other groups)."""
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is needed to run as another user")
    closed = closed_to_others(Path(aws_wodle.__file__).parent)
    if closed is not None:
        pytest.skip(f"another user cannot reach the code under test: {closed} is closed to others")
    line = [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return subprocess.run(
        [*line, sys.executable, "-m", "aws_wodle", *args],
        env=cli_env(), capture_output=True, text=True, timeout=120, check=False, cwd="/",
    )  # fmt: skip


@pytest.fixture
def theirs() -> Iterator[Path]:
    """A directory of STRANGER's own (under /tmp, which every user may reach)."""
    folder = Path(tempfile.mkdtemp(prefix="awp"))
    os.chown(folder, STRANGER, STRANGER)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_user_running_it_on_files_of_their_own_passes(theirs: Path) -> None:
    """As a non-root user: their own file (group-writable by their group), and root's file
    that their group may write, are accepted; another user's file is refused."""
    conf = theirs / "ossec.conf"
    conf.write_text("<ossec_config>\n</ossec_config>\n")
    os.chown(conf, STRANGER, STRANGER)
    conf.chmod(0o664)
    own = as_user(STRANGER, "check-config", "--config", str(conf))
    assert own.returncode == 0, own.stderr
    os.chown(conf, 0, STRANGER)
    conf.chmod(0o660)
    group = as_user(STRANGER, "check-config", "--config", str(conf))
    assert group.returncode == 0, group.stderr
    os.chown(conf, OTHER, STRANGER)
    conf.chmod(0o644)
    other = as_user(STRANGER, "check-config", "--config", str(conf))
    assert other.returncode == 2
    expected = refusal(conf, f"owned by uid {OTHER}", f"chown root {conf}")
    assert other.stderr.splitlines() == [expected]
