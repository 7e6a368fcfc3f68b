"""The service user's state directory attacked, for real: root follows no link planted there.

Each test runs aws-wodle as root (import-state, legacy, run, status) on a state directory
owned by a throwaway uid that stands for ``wazuh``, after that user planted links or files,
and checks the victim files (in the test's own, root-owned directory) for content, mode and
owner afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aws_wodle.store.state import StateStore
from conftest import Setup, cli_env, run_cli, seed
from support.ownerdir import (
    SERVICE_UID,
    needs_root,
    plant_link,
    unchanged,
    victim,
)
from test_import_state import ACCOUNT, old_db, run_import
from test_legacy import old_args, run_legacy


def import_into(folder: Path) -> Any:
    """``import-state`` as root into ``folder``'s state.db."""
    old = folder.parent / "aws_services.db"
    if not old.exists():
        old_db(old, [("us-east-1", "app", "s", None, 1, 2)])
    return run_import(str(old), "--state", str(folder / "state.db"), "--account", ACCOUNT)


def one_error_naming(result: Any, path: Path) -> None:
    """Exit non-zero, no traceback, and a line naming ``path``."""
    assert result.returncode != 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert any(str(path) in line for line in out.splitlines()), out


def legacy_into(setup: Setup, folder: Path) -> Any:
    """``legacy`` as root (as the manager starts it), with its state in ``folder``."""
    args = old_args(setup, "app", paths=False)
    env = cli_env(AWS_WODLE_STATE=str(folder / "state.db"), AWS_WODLE_QUEUE=setup.sink.path)
    return run_legacy(*args, env=env)


def run_into(setup: Setup, folder: Path) -> Any:
    """``run --once`` as root with its state in ``folder``."""
    config = setup.config(setup.service("app"))
    return run_cli(
        "run", "--once", "--config", str(config), "--queue", setup.sink.path,
        "--state", str(folder / "state.db"), "--settle", "0s",
    )  # fmt: skip


@needs_root
@pytest.mark.parametrize("command", ["import-state", "legacy", "run"])
def test_a_lock_linked_to_a_root_file_is_refused_and_the_file_untouched(
    command: str, service_dir: Path, setup: Setup
) -> None:
    """state.db.lock -> a root-owned 0640 file: refused with a line naming the lock; the
    file keeps its bytes, mode and owner (it was truncated and given a pid before)."""
    seed(setup.moto.client(), "app", {"s": ["one"]})
    shadow = victim(service_dir.parent, "shadow")
    plant_link(service_dir / "state.db.lock", shadow)
    if command == "import-state":
        result = import_into(service_dir)
    elif command == "legacy":
        result = legacy_into(setup, service_dir)
    else:
        result = run_into(setup, service_dir)
    one_error_naming(result, service_dir / "state.db.lock")
    assert unchanged(shadow)
    assert not (service_dir / "state.db").exists()


@needs_root
def test_a_dangling_link_makes_root_create_nothing(service_dir: Path) -> None:
    """A lock or database linked to a missing file (/etc/sudoers.d/x): nothing is created."""
    target = service_dir.parent / "sudoers.d-x"
    for name in ("state.db.lock", "state.db"):
        plant_link(service_dir / name, target)
        result = import_into(service_dir)
        one_error_naming(result, service_dir / name)
        assert not target.exists()
        (service_dir / name).unlink()


@needs_root
def test_a_database_linked_to_an_empty_root_file_gets_no_database(service_dir: Path) -> None:
    """state.db -> an empty root file: root writes no database into it."""
    empty = victim(service_dir.parent, "empty", "")
    plant_link(service_dir / "state.db", empty)
    one_error_naming(import_into(service_dir), service_dir / "state.db")
    assert unchanged(empty, "")


@needs_root
@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_wal_and_shm_links_are_refused_and_the_state_kept(
    suffix: str, service_dir: Path, setup: Setup
) -> None:
    """A -wal or -shm link is refused before SQLite opens anything: the real state is not
    taken for damaged, not moved aside, and keeps its positions."""
    assert import_into(service_dir).returncode == 0
    state = service_dir / "state.db"
    before = state.read_bytes()
    shadow = victim(service_dir.parent, "shadow")
    plant_link(Path(f"{state}{suffix}"), shadow)
    seed(setup.moto.client(), "app", {"s": ["one"]})
    result = legacy_into(setup, service_dir)
    one_error_naming(result, Path(f"{state}{suffix}"))
    assert unchanged(shadow)
    assert state.read_bytes() == before
    assert not list(service_dir.glob("state.db.unusable*"))


@needs_root
def test_a_hard_link_to_a_root_file_is_refused(service_dir: Path) -> None:
    """A database with a second name (a hard link to a root file) is refused."""
    shadow = victim(service_dir, "shadow-copy")  # same file system, as a hard link needs
    os.link(shadow, service_dir / "state.db")
    one_error_naming(import_into(service_dir), service_dir / "state.db")
    assert unchanged(shadow)


@needs_root
def test_status_as_root_follows_no_link(service_dir: Path) -> None:
    """status as root, state.db-shm -> a root file: refused, the file untouched."""
    assert import_into(service_dir).returncode == 0
    shadow = victim(service_dir.parent, "shadow")
    plant_link(service_dir / "state.db-shm", shadow)
    result = run_cli("status", "--state", str(service_dir / "state.db"))
    one_error_naming(result, service_dir / "state.db-shm")
    assert unchanged(shadow)


@needs_root
@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_directory_others_may_write_is_refused_before_anything_is_written(
    mode: int, service_dir: Path
) -> None:
    """A state directory writable by every user (or, for root, by its group) is refused
    with a line naming it and the fix; nothing is written there."""
    service_dir.chmod(mode)
    result = import_into(service_dir)
    one_error_naming(result, service_dir)
    assert "chmod" in result.stderr
    assert list(service_dir.iterdir()) == []


@needs_root
def test_a_race_of_links_never_reaches_root_files(service_dir: Path) -> None:
    """The service user swaps the lock and the database between nothing and links to root
    files while root runs import-state again and again: root, acting as that user while it
    opens the state, never writes a root file."""
    shadow = victim(service_dir.parent, "shadow")
    swapper = (
        "import os, sys, time\n"
        "folder, target = sys.argv[1], sys.argv[2]\n"
        "end = time.monotonic() + 8\n"
        "while time.monotonic() < end:\n"
        "    for name in ('state.db.lock', 'state.db', 'state.db-wal'):\n"
        "        tmp = os.path.join(folder, '.x' + name)\n"
        "        try:\n"
        "            os.symlink(target, tmp)\n"
        "            os.rename(tmp, os.path.join(folder, name))\n"
        "            os.unlink(os.path.join(folder, name))\n"
        "        except OSError:\n"
        "            pass\n"
    )
    as_user = ["setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups"]
    racer = subprocess.Popen([*as_user, sys.executable, "-c", swapper, str(service_dir), shadow])
    try:
        end = time.monotonic() + 7
        runs = 0
        while time.monotonic() < end and runs < 30:
            import_into(service_dir)
            runs += 1
    finally:
        racer.wait(timeout=30)
    assert runs >= 3
    assert unchanged(shadow)


def test_new_state_directory_and_files_have_explicit_modes(tmp_path: Path) -> None:
    """With umask 022 outside systemd, a new state directory is 0750 and every state file
    0600, not 0755 and 0644."""
    folder = tmp_path / "fresh" / "aws-wodle"
    code = (
        "import json, os, sys; os.umask(0o022); from aws_wodle.store.state import StateStore; "
        "s = StateStore(sys.argv[1]); s.record_failures(['x']); d = os.path.dirname(sys.argv[1]); "
        "print(json.dumps({n: os.stat(os.path.join(d, n)).st_mode & 0o777 "
        "for n in os.listdir(d)})); s.close()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder / "state.db")],
        env=cli_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert folder.stat().st_mode & 0o777 == 0o750
    modes = json.loads(result.stdout)
    assert set(modes) == {"state.db", "state.db.lock", "state.db-wal", "state.db-shm"}
    assert set(modes.values()) == {0o600}, modes


def test_an_old_world_readable_state_file_is_tightened(tmp_path: Path) -> None:
    """A state file left 0644 by an older version is 0600 once opened again."""
    path = tmp_path / "state.db"
    StateStore(str(path)).close()
    path.chmod(0o644)
    StateStore(str(path)).close()
    assert path.stat().st_mode & 0o777 == 0o600


@needs_root
def test_state_dir_makes_the_directory_for_its_user_and_follows_no_link(
    service_dir: Path,
) -> None:
    """``aws-wodle state-dir`` (the units' and package's install -d) makes a missing
    directory the user's, mode 0750; a link in its place is refused and its target kept."""
    users = Path("/etc/passwd").read_text().splitlines()
    user = next(line.split(":")[0] for line in users if line.split(":")[2] not in ("0",))
    uid = int(next(line.split(":")[2] for line in users if line.split(":")[0] == user))
    fresh = service_dir.parent / "var" / "aws-wodle"
    made = run_cli("state-dir", "--owner", user, str(fresh))
    assert made.returncode == 0, made.stderr
    info = fresh.stat()
    assert (info.st_uid, info.st_mode & 0o7777) == (uid, 0o750)
    etc = service_dir.parent / "etc"
    etc.mkdir(mode=0o755)
    planted = service_dir.parent / "var" / "planted"
    plant_link(planted, etc)
    refused = run_cli("state-dir", "--owner", user, str(planted))
    one_error_naming(refused, planted)
    info = etc.stat()
    assert (info.st_uid, info.st_mode & 0o7777) == (0, 0o755)
