"""A state directory of the service's user, as on a manager host, for tests run as root.

The user is a throwaway uid that owns nothing else; the directory's parents let it pass
(as ``/var/ossec/var``, root:wazuh 0750, lets ``wazuh`` pass), which pytest's own 0700
temporary directories would not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICE_UID = 12345  # stands for the manager's user: a uid and gid that own nothing else here

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="run as root to test what root does"
)


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """An empty state directory, SERVICE_UID's, mode 0750, in a parent it may pass."""
    base = Path(tempfile.mkdtemp(prefix="aws-wodle-host-", dir="/var/tmp"))
    try:
        base.chmod(0o711)
        folder = base / "aws-wodle"
        folder.mkdir(mode=0o750)
        os.chown(folder, SERVICE_UID, SERVICE_UID)
        yield folder
    finally:
        shutil.rmtree(base, ignore_errors=True)


def plant_link(link: Path, target: Path) -> None:
    """``ln -s TARGET LINK`` as the service's user would leave it (the link is theirs)."""
    link.symlink_to(target)
    os.lchown(link, SERVICE_UID, SERVICE_UID)


def victim(folder: Path, name: str, text: str = "root's secret\n") -> Path:
    """A root-owned 0640 file outside the state directory, like /etc/shadow."""
    path = folder / name
    path.write_text(text)
    path.chmod(0o640)
    return path


def unchanged(path: Path, text: str = "root's secret\n") -> bool:
    """The victim still holds its text, mode 0640, root's."""
    info = path.lstat()
    return (
        path.read_text() == text
        and (info.st_mode & 0o777) == 0o640
        and (info.st_uid, info.st_gid) == (0, 0)
    )
