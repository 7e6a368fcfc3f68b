"""The wheel and the .deb carry the command, the example configuration and the units."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from debpkg import build_deb


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
        "share/aws-wodle/aws-wodle.toml.example",
        "share/aws-wodle/rules/aws-wodle_rules.xml",
        "share/aws-wodle/aws-wodle.service",
        "share/aws-wodle/aws-wodle@.service",
    }
    assert "aws_wodle/py.typed" in names


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is missing")


@needs_dpkg
def test_deb_holds_units_command_example_and_wheels_for_each_python() -> None:
    """make deb's package: version from pyproject.toml, the units as in systemd/, the
    command as a link into /opt/aws-wodle, the example, and wheels that serve CPython 3.10
    to 3.13 (pure ones, in a package for all architectures); its scripts are valid sh."""
    deb = build_deb()
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    fields = {
        name: subprocess.run(
            ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
        ).stdout.strip()
        for name in ("Package", "Version", "Architecture", "Depends")
    }
    assert fields["Package"] == "aws-wodle"
    assert fields["Version"] == version.group(1)
    assert deb.name == f"aws-wodle_{version.group(1)}_{fields['Architecture']}.deb"
    assert "python3 (>= 3.10)" in fields["Depends"]
    assert "python3-venv" in fields["Depends"]
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
    assert "/usr/bin/aws-wodle -> /opt/aws-wodle/bin/aws-wodle" in listing
    assert "/usr/share/doc/aws-wodle/ossec.conf.example" in names
    assert "/usr/share/doc/aws-wodle/aws-wodle.toml.example" in names
    assert "/usr/share/doc/aws-wodle/rules/aws-wodle_rules.xml" in names
    wheels = {
        n.rsplit("/", 1)[1]
        for n in names
        if n.startswith("/usr/share/aws-wodle/wheels/") and n.endswith(".whl")
    }
    for name in ("aws_wodle-", "boto3-", "botocore-", "python_dateutil-"):
        assert any(w.startswith(name) for w in wheels), name
    compiled = {w for w in wheels if not w.endswith("-none-any.whl")}
    assert (fields["Architecture"] == "all") == (not compiled)
    for project in {w.split("-", 1)[0] for w in compiled}:
        for tag in ("cp310", "cp311", "cp312", "cp313"):
            assert any(w.startswith(f"{project}-") and f"-{tag}-" in w for w in compiled)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["dpkg-deb", "-R", str(deb), scratch], check=True)
        for unit in ("aws-wodle.service", "aws-wodle@.service"):
            shipped = Path(scratch, "lib/systemd/system", unit).read_bytes()
            assert shipped == (ROOT / "systemd" / unit).read_bytes()
        for script in ("postinst", "prerm", "postrm"):
            path = Path(scratch, "DEBIAN", script)
            assert path.stat().st_mode & 0o111
            subprocess.run(["sh", "-n", str(path)], check=True)
