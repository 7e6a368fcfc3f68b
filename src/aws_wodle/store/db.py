"""The one connection to the state file: opening it (the directory, the lock file beside it,
the integrity check, a file that cannot be used moved aside), the pragmas, transactions,
and opening it for reading only. Every part of the state works through one `Database`."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import StateError, StateLocked
from ..paths import STATE_RELATIVE
from . import schema, statedir

# The name the daemon's log lines have always carried for the state file.
log = logging.getLogger("aws_wodle.store.state")

# SQLite's page cache per connection (KiB).
CACHE_KIB = 256


def refuse_directory(path: Path) -> None:
    """A state path naming a directory (not followed through a link) is a mistake of the
    command line: say so in one line, naming the file it probably meant."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise StateError(
            f"state file {path} is a directory: --state names the state file itself "
            f"(e.g. {path / Path(STATE_RELATIVE).name})"
        )


class Database:
    """A SQLite state file, safe to share between threads of one process.

    Writes are committed at once (WAL, synchronous=FULL), so a position on disk never runs
    ahead of what the caller has already forwarded. An exclusive lock file beside the
    database keeps a second daemon away. One connection behind one lock: the parts of the
    state that write together do so in one `transaction`.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.path = Path(path)
        refuse_directory(self.path)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        try:
            statedir.make_directory(self.path.parent)
        except PermissionError as exc:
            raise StateError(_refusal(self.path.parent, "cannot be created", exc)) from exc
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.path.parent}: {exc}"
            ) from exc
        with statedir.entered(self.path) as (owner, handed):
            self._owner = owner
            self.handed_over = handed
            _check_writable(self.path)
            if lock:
                self._lock_fd = _take_lock(self.path.with_name(self.path.name + ".lock"), owner)
            try:
                statedir.prepare_database(self.path, owner)
                self._db = self._open_checked()
            except sqlite3.DatabaseError as exc:
                self._release_lock()
                raise StateError(f"state file {self.path} is unusable: {exc}") from exc
            except BaseException:
                self._release_lock()
                raise

    def _open_checked(self) -> sqlite3.Connection:
        """Open the database; a corrupt, truncated or newer file is moved aside first."""
        try:
            return self._connect()
        except (sqlite3.DatabaseError, schema.NewerSchema) as exc:
            aside = self._move_aside()
            log.error(
                "state file %s cannot be used (%s); moved aside to %s. Collection starts "
                "again from each service's only_logs_after (or today), not from the beginning",
                self.path,
                exc,
                aside,
            )
        statedir.prepare_database(self.path, self._owner)
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before save() returns, so a position that says
            # "forwarded" survives a power loss.
            db.execute("PRAGMA synchronous=FULL")
            # A page's rows touch a few hundred B-tree pages at most; SQLite's default
            # cache (2 MB) would grow with the number of streams for no gain.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            schema.bring_up_to_date(db, self.path)
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.unusable-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                source.replace(Path(str(aside) + suffix))
        return aside

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``work`` in one transaction, committed (on disk) before returning."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that each commit on their own."""
        with self._lock:
            yield self._db

    def one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else tuple(row)

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple[object, ...]) -> None:
        """One statement, committed on its own."""
        with self._lock:
            self._db.execute(sql, args)


def _owner(path: Path) -> str:
    try:
        return statedir.user_name(path.stat().st_uid)
    except OSError:
        return "the manager's user"


def _me() -> str:
    return statedir.user_name(os.geteuid())


def _refusal(path: Path, what: str, exc: OSError) -> str:
    """One line for a state path that refuses us, naming it and the fix."""
    owner = _owner(path if path.exists() else path.parent)
    return (
        f"state path {path} {what}: permission denied ({exc.strerror or exc}); aws-wodle runs "
        f"as {_me()} and it belongs to {owner}: run aws-wodle as {owner} (sudo -u {owner} "
        f"aws-wodle ...), or give it to this user (chown -R {_me()} {path.parent})"
    )


def _check_writable(path: Path) -> None:
    """Refuse, with the fix, a state directory or file that we may not write: never take
    a permission problem for a damaged file (that would move it aside)."""
    folder = path.parent
    probe = folder / f".{path.name}.probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except PermissionError as exc:
        raise StateError(_refusal(folder, "is not writable", exc)) from exc
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm"):
        target = Path(f"{path}{suffix}")
        if not target.exists():
            continue
        try:
            os.close(os.open(target, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC))
        except PermissionError as exc:
            raise StateError(_refusal(target, "is not writable", exc)) from exc


def _take_lock(lock_path: Path, owner: statedir.Owner) -> int:
    """Hold an exclusive lock on ``lock_path`` (no link followed); name the holder's pid
    when it is taken."""
    import fcntl  # noqa: PLC0415 - POSIX only, like the daemon itself

    try:
        fd = statedir.open_file(lock_path, owner, os.O_RDWR | os.O_CREAT)
    except PermissionError as exc:
        raise StateError(_refusal(lock_path, "cannot be opened", exc)) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StateLocked(
            f"state file {lock_path.with_suffix('')} is in use by another aws-wodle "
            f"(pid {holder}); only one collector may use a state file"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a state file for reading only (``status``), without taking the daemon's lock."""
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT 1 FROM meta").fetchall()
    except sqlite3.OperationalError:
        # A WAL file in a directory we may not write: with no daemon writing it (the -wal
        # and -shm files are gone), it can be read as an unchanging file.
        db.close()
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    return db


@contextlib.contextmanager
def reading(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """The state file opened for reading only, as its directory's owner when run as root,
    following no link there (``statedir``)."""
    with statedir.entered(Path(path)):
        db = open_readonly(path)
        try:
            yield db
        finally:
            db.close()
