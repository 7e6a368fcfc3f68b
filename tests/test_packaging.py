"""The wheel carries the command, the example configuration and the systemd units."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_wheel_holds_command_example_and_units(tmp_path: Path) -> None:
    """pip builds a wheel with the console script, etc/ossec.conf.example and both units."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
         str(ROOT)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("aws_wodle-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "aws-wodle = aws_wodle.cli:main" in scripts
    data = {n.split("/data/", 1)[1] for n in names if "/data/" in n}
    assert data == {
        "share/aws-wodle/ossec.conf.example",
        "share/aws-wodle/aws-wodle.service",
        "share/aws-wodle/aws-wodle@.service",
    }
    assert "aws_wodle/py.typed" in names
