"""The wheel and the .deb carry the command, the example configuration and the units."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT
from debpkg import build_deb


def sources() -> set[str]:
    """Every module of the package, as a wheel names it (``aws_wodle/poll/window.py``)."""
    src = ROOT / "src"
    return {path.relative_to(src).as_posix() for path in (src / "aws_wodle").rglob("*.py")}


def test_wheel_holds_command_example_and_units(tmp_path: Path) -> None:
    """pip builds a wheel with every module, the console script, etc/ossec.conf.example and
    both units."""
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
    assert "aws-wodle = aws_wodle.runtime.cli:main" in scripts
    data = {n.split("/data/", 1)[1] for n in names if "/data/" in n}
    assert data == {
        "share/aws-wodle/ossec.conf.example",
        "share/aws-wodle/aws-wodle.toml.example",
        "share/aws-wodle/rules/aws-wodle_rules.xml",
        "share/aws-wodle/aws-wodle.service",
        "share/aws-wodle/aws-wodle@.service",
    }
    assert "aws_wodle/py.typed" in names
    assert sorted(sources() - names) == []


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
        (ours,) = Path(scratch, "usr/share/aws-wodle/wheels").glob("aws_wodle-*.whl")
        with zipfile.ZipFile(ours) as archive:
            packed = set(archive.namelist())
        assert sorted(sources() - packed) == []


# The CPythons the package claims: Debian 12 has 3.11, Ubuntu 22.04 3.10, Ubuntu 24.04 3.12,
# Debian 13 3.13.
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def marker_environment(version: str) -> dict[str, str]:
    """The values of dependency markers on a Linux CPython ``version`` on this machine."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": platform.machine(),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{version}.0",
        "python_version": version,
        "sys_platform": "linux",
    }


def needed(requirement: Requirement, environment: dict[str, str], extras: list[str]) -> bool:
    """Whether ``requirement`` holds there, for a distribution asked with ``extras``."""
    marker = requirement.marker
    return marker is None or any(
        marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras)
    )


def resolve_offline(wheels: Path, version: str, scratch: Path) -> dict[str, str]:
    """Name and version of what pip installs from ``wheels`` alone for CPython ``version``,
    as the postinst asks it there.

    pip judges markers by the Python it runs on, not by ``--python-version``: whatever a
    marker requires for ``version`` that pip left out is asked for by name, until every
    requirement that holds for ``version`` is met by what pip chose."""
    environment = marker_environment(version)
    asked = ["aws-wodle"]
    report = scratch / f"report-{version}.json"
    for _ in range(10):
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
             "--disable-pip-version-check", "--no-index", "--no-cache-dir",
             "--find-links", str(wheels), "--python-version", version,
             "--implementation", "cp", "--only-binary=:all:",
             "--target", str(scratch / "target"), "--report", str(report), *asked],
            capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
        )  # fmt: skip
        assert result.returncode == 0, f"Python {version}, {asked}:\n{result.stderr}"
        chosen = {
            canonicalize_name(item["metadata"]["name"]): item
            for item in json.loads(report.read_text())["install"]
        }
        missing = []
        for item in chosen.values():
            extras = item.get("requested_extras") or []
            for line in item["metadata"].get("requires_dist") or []:
                requirement = Requirement(line)
                if not needed(requirement, environment, extras):
                    continue
                dist = chosen.get(canonicalize_name(requirement.name))
                if (
                    dist is None
                    or not requirement.specifier.contains(
                        dist["metadata"]["version"], prereleases=True
                    )
                    or not requirement.extras <= set(dist.get("requested_extras") or [])
                ):
                    requirement.marker = None
                    missing.append(str(requirement))
        if not missing:
            return {name: item["metadata"]["version"] for name, item in chosen.items()}
        asked += sorted(set(missing) - set(asked))
    raise AssertionError(f"Python {version}: what pip chose never met {missing}")


@needs_dpkg
def test_deb_wheels_install_offline_on_each_python(tmp_path: Path) -> None:
    """pip's resolver finds, among the package's wheels alone, all that aws-wodle needs on
    each CPython from 3.10 to 3.13, markers judged for that version: tomli on 3.10 only."""
    deb = build_deb()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    wheels = tmp_path / "root/usr/share/aws-wodle/wheels"
    for version in PYTHONS:
        chosen = resolve_offline(wheels, version, tmp_path)
        assert {"aws-wodle", "boto3", "botocore", "python-dateutil"} <= chosen.keys(), version
        assert ("tomli" in chosen) == (version == "3.10"), (version, chosen)
