"""The .deb that `make deb` builds, for the tests that read or install it.

packaging/build_deb.py builds it again only when an input changed; a lock keeps two test
processes (pytest-xdist workers) from building it at the same time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nspawn import locked

ROOT = Path(__file__).resolve().parent.parent


def build_deb() -> Path:
    """The path of the package, built if needed (the first time, wheels come from PyPI)."""
    with locked(ROOT / "build" / ".deb.lock"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "packaging" / "build_deb.py")],
            capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"packaging/build_deb.py failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
