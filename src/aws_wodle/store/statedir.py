"""The state directory, entered safely: no link followed, no file of a stranger, modes set.

The state directory belongs to the service's user (``wazuh``), and parts of aws-wodle run
as root (``import-state``, ``legacy`` started by the manager, an operator's ``run`` or
``status``). Whatever that user plants there must not make root write elsewhere. Three
rules hold that:

- Before anything is opened, every state file (the database, its ``-wal`` and ``-shm``,
  the lock) is looked at without following links: a link, a file of another kind, a file
  with several names or a file of an owner we do not trust is refused with one line naming
  it and the fix. A directory that every user (or, for root, its group) may write is
  refused the same way.
- Run as root in a directory of another user, the process acts as that user (effective
  uid and gid, no supplementary groups) while it opens the state, so that any link that
  appears in a race is followed with that user's rights only, as logrotate's ``su`` does.
  Once open, SQLite works on its open files and removes its own by name, which follows no
  link.
- Files are made with explicit modes, whatever the umask: the directory 0750, each file
  0600; group and other bits of an existing file are taken away.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import StateError

# The files of one state: the database, SQLite's write-ahead log and shared index, our lock.
STATE_SUFFIXES = ("", "-wal", "-shm", ".lock")
DIR_MODE = 0o750
FILE_MODE = 0o600


@dataclass(frozen=True)
class Owner:
    """Who owns the state directory, and so whose files are trusted in it."""

    uid: int
    gid: int
    name: str


def user_name(uid: int) -> str:
    """The login name of ``uid``, or the number when it has none."""
    import pwd  # noqa: PLC0415 - POSIX only, like the daemon itself

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _fix_dir(folder: Path, owner: str) -> str:
    return f"install -d -o {owner} -g {owner} -m 0750 {folder}"


def make_directory(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0750 whatever the umask."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)


def directory_owner(folder: Path) -> Owner:
    """The owner of the state directory, after refusing one that others may fill."""
    try:
        info = folder.stat()
    except FileNotFoundError:
        raise StateError(f"the state directory {folder} does not exist") from None
    except OSError as exc:
        raise StateError(f"cannot look at the state directory {folder}: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"{folder} should be the state directory but is not a directory")
    name = user_name(info.st_uid)
    if info.st_mode & stat.S_IWOTH:
        raise StateError(
            f"the state directory {folder} may be written by every user, who could plant "
            f"links there: give it to the service's user alone ({_fix_dir(folder, name)}, "
            f"or chmod o-w {folder})"
        )
    if os.geteuid() == 0 and info.st_mode & stat.S_IWGRP:
        raise StateError(
            f"the state directory {folder} may be written by its group, whose members could "
            f"plant links that root would follow: chmod g-w {folder}"
        )
    return Owner(info.st_uid, info.st_gid, name)


def _trusted(uid: int, owner: Owner) -> bool:
    return uid in (0, owner.uid, os.geteuid())


def check_files(state: Path, owner: Owner) -> None:
    """Refuse any state file that is a link, not a regular file, has several names, or
    belongs to someone other than root, the directory's owner or us; nothing is followed."""
    for suffix in STATE_SUFFIXES:
        path = Path(f"{state}{suffix}")
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            raise StateError(
                f"the state directory {state.parent} refuses us ({exc.strerror}); it belongs to "
                f"{owner.name}: run aws-wodle as {owner.name} (sudo -u {owner.name} aws-wodle "
                f"...), or give it to this user (chown -R {user_name(os.geteuid())} "
                f"{state.parent})"
            ) from exc
        except OSError as exc:
            raise StateError(f"cannot look at the state file {path}: {exc}") from exc
        what = None
        if stat.S_ISLNK(info.st_mode):
            what = "is a symbolic link"
        elif not stat.S_ISREG(info.st_mode):
            what = "is not a regular file"
        elif info.st_nlink > 1:
            what = f"has {info.st_nlink} names (hard links)"
        elif not _trusted(info.st_uid, owner):
            raise _stranger(path, info.st_uid, owner)
        if what is not None:
            raise _refused(path, what)


def _refused(path: Path, what: str) -> StateError:
    return StateError(
        f"state file {path} {what}; aws-wodle never follows or trusts such a file in the "
        f"state directory: remove it (rm {path}) and find out who put it there"
    )


def _stranger(path: Path, uid: int, owner: Owner) -> StateError:
    return StateError(
        f"state file {path} belongs to {user_name(uid)}, neither root nor {owner.name} (the "
        f"state directory's owner); aws-wodle trusts no other user's file there: if it is the "
        f"state, give it back (chown {owner.name} {path}), or else remove it"
    )


def open_file(path: Path, owner: Owner, flags: int) -> int:
    """Open (or create, mode 0600) one state file without following a link; refuse what
    ``check_files`` refuses. Returns the descriptor."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(path, "is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refused(path, "is not a regular file")
        if info.st_nlink > 1:
            raise _refused(path, f"has {info.st_nlink} names (hard links)")
        if not _trusted(info.st_uid, owner):
            raise _stranger(path, info.st_uid, owner)
        tighten(fd, info)
    except BaseException:
        os.close(fd)
        raise
    return fd


def tighten(fd: int, info: os.stat_result) -> None:
    """Take group and other bits away from a file of ours (0644 from an old umask: 0600)."""
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o700)


def prepare_database(state: Path, owner: Owner) -> None:
    """Create the database file 0600 before SQLite does (SQLite would use 0644 less the
    umask, and its -wal and -shm take the database's mode); tighten an existing one."""
    fd = open_file(state, owner, os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK)
    os.close(fd)


@contextlib.contextmanager
def acting_as(owner: Owner, folder: Path) -> Iterator[None]:
    """Run as root, act as the directory's owner for the block (effective ids, no other
    groups); as anyone else, or in a directory of root's, change nothing."""
    if os.geteuid() != 0 or owner.uid == 0:
        yield
        return
    groups, egid = os.getgroups(), os.getegid()
    try:
        os.setgroups([owner.gid])
        try:
            os.setegid(owner.gid)
            os.seteuid(owner.uid)
        except PermissionError:
            _restore(groups, egid)
            raise
    except PermissionError as exc:
        raise StateError(
            f"the state directory {folder} belongs to {owner.name}, and aws-wodle runs as root "
            f"without "
            f"the right to act as {owner.name} ({exc.strerror}): run it as that user "
            f"(sudo -u {owner.name} aws-wodle ...)"
        ) from exc
    try:
        yield
    finally:
        _restore(groups, egid)


def _restore(groups: list[int], egid: int) -> None:
    if os.geteuid() != 0:
        os.seteuid(0)
    os.setegid(egid)
    os.setgroups(groups)


def hand_over(state: Path, owner: Owner) -> list[Path]:
    """Run as root, give the directory's owner each plain state file that root holds there
    (left by an older version run as root), mode 0600, so that the service can open it;
    returns the paths changed. Nothing is followed, and no file of another kind, of several
    names or of another owner is touched."""
    if os.geteuid() != 0 or owner.uid == 0:
        return []
    changed: list[Path] = []
    for suffix in STATE_SUFFIXES:
        path = Path(f"{state}{suffix}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # absent, or a link (which ``check_files`` refuses)
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_uid == 0:
                os.fchown(fd, owner.uid, owner.gid)
                os.fchmod(fd, FILE_MODE)
                changed.append(path)
        finally:
            os.close(fd)
    return changed


@contextlib.contextmanager
def entered(state: Path) -> Iterator[tuple[Owner, list[Path]]]:
    """Check the state directory and files of ``state``, give root's files there to the
    directory's owner, then hold the block as that owner (see ``acting_as``). Yields the
    owner and the files handed over."""
    owner = directory_owner(state.parent)
    check_files(state, owner)
    handed = hand_over(state, owner)
    with acting_as(owner, state.parent):
        _reachable(state.parent, owner)
        check_files(state, owner)  # again, as the owner: what changed meanwhile is refused
        yield owner, handed


def _reachable(folder: Path, owner: Owner) -> None:
    try:
        os.stat(folder)
    except PermissionError:
        raise StateError(
            f"the state directory {folder} cannot be reached by its owner {owner.name}: a "
            f"directory above it refuses {owner.name}; let {owner.name} pass through each "
            f"(chmod o+x, or chgrp {owner.name} and chmod g+x)"
        ) from None


def create_for(folder: Path, user: str) -> None:
    """Make ``folder`` the state directory of ``user`` (mode 0750), as root, without
    following a link put in its place: what ``install -d -o USER`` would do, safely. An
    existing directory is given to ``user``; a link or any other file is refused."""
    import pwd  # noqa: PLC0415 - POSIX only, like the daemon itself

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StateError(f"no user '{user}' here to own {folder}") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder.name, 0o700, dir_fd=parent)
        try:
            fd = os.open(
                folder.name,
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=parent,
            )
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StateError(
                    f"{folder} should be the state directory but is a link or a file; it was "
                    f"left alone: remove it (rm {folder}) and find out who put it there"
                ) from None
            raise
        try:
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
            os.fchmod(fd, DIR_MODE)
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def main(argv: list[str]) -> int:
    """``aws-wodle state-dir --owner USER DIR``: the units' and packages' safe ``install -d``.
    0 done, 1 refused (one line on stderr), 2 bad arguments."""
    import argparse  # noqa: PLC0415 - only this command needs it
    import sys  # noqa: PLC0415

    p = argparse.ArgumentParser(
        prog="aws-wodle state-dir",
        description="create the state directory for the service's user, following no link",
    )
    p.add_argument("--owner", required=True, help="the service's user (wazuh)")
    p.add_argument("directory", type=Path)
    args = p.parse_args(argv)
    try:
        create_for(args.directory, args.owner)
    except (StateError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
