"""Builds ``dist/aws-wodle_VERSION_all.deb`` for Debian 12 and its kin (Ubuntu 22.04 on).

The package carries the wheels of aws-wodle and of its dependencies, for each CPython the
target may have (``--pythons``), and a postinst that builds the virtualenv ``/opt/aws-wodle``
from them with the target's own ``/usr/bin/python3``: a virtualenv made with another
interpreter would point at it and break. It also holds the systemd units in
``/lib/systemd/system``, ``/usr/bin/aws-wodle`` (a link into the virtualenv) and the example
configuration under ``/usr/share/doc/aws-wodle``; ``packaging/debian/`` has the maintainer
scripts, which say what install, upgrade, removal and purge do.

Every dependency is pure Python today, so the package is ``all``; should one need compiled
wheels, they are fetched for ``--arch`` (this machine's by default) and every Python, and the
package becomes ``_amd64`` (or ``_arm64``), its python3 bounded to the versions it covers.

pip judges a requirement's markers (``tomli; python_version < '3.11'``) by the Python it runs
on, even with ``--python-version``: so the markers are judged here for each target Python in
turn, and what holds there is asked of pip by name, for aws-wodle's requirements and those of
every wheel downloaded for that Python, until nothing is missing. On the target, the
postinst's pip judges the same markers by the system's python3 and picks the same wheels.

The dependency wheels are downloaded from PyPI once and cached in ``build/wheels/ARCH``
until the dependencies, the Python versions or the architecture change; the package is
built again only when one of its inputs (``INPUTS``) changed. Prints the package's path.
Needs pip, packaging and dpkg-deb (``apt-get install dpkg``), not root.
"""

from __future__ import annotations

import argparse
import hashlib
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

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
BUILD = ROOT / "build"
NAME = "aws-wodle"

# Debian 12 has 3.11, Ubuntu 22.04 3.10, Ubuntu 24.04 3.12, Debian 13 3.13.
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# Wheel platforms per Debian architecture; every target above has glibc 2.35 or newer.
PLATFORMS = {
    "amd64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
}
# Debian's name of this machine's architecture, by Python's.
MACHINES = {"x86_64": "amd64", "aarch64": "arm64"}
# Python's name of each Debian architecture, for the platform_machine of markers.
MACHINE_OF = {debian: python for python, debian in MACHINES.items()}
# Rounds of "download, find what the markers of this Python still want" before giving up;
# each round asks for at least one more requirement, and dependency chains are short.
ROUNDS = 10
# Installed as the package holds them, with these modes (the rest is 0644 files, 0755 dirs).
SCRIPTS = ("postinst", "prerm", "postrm")
UNITS = ("aws-wodle.service", "aws-wodle@.service")

DESCRIPTION = """\
CloudWatch Logs collector for the Wazuh manager's aws-s3 wodles
 aws-wodle reads the aws-s3 wodle blocks of the manager's ossec.conf, collects every
 CloudWatch Logs service they configure, and forwards each event to the manager's
 analysis queue as the manager's own module does, as a long-running daemon that
 remembers its position per stream. It runs under systemd as the manager's user.
 .
 The package builds its virtualenv, /opt/aws-wodle, from the wheels it carries with the
 system's python3; it does not start or enable the service."""


def project_version() -> str:
    """The version in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("pyproject.toml has no version")
    return match.group(1)


def run(*command: str) -> None:
    subprocess.run(command, check=True)


def build_own_wheel(dest: Path) -> Path:
    """aws-wodle's own wheel, freshly built from the work tree."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dest), str(ROOT))
    (wheel,) = dest.glob("aws_wodle-*.whl")
    return wheel


def requirements(wheel: Path, *, extras: bool = False) -> list[str]:
    """The Requires-Dist lines of a wheel: its runtime dependencies, and with ``extras``
    those of its extras too."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode()
    return sorted(
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:") and (extras or "extra ==" not in line)
    )


def marker_environment(version: str, arch: str) -> dict[str, str]:
    """What a requirement's markers see on a Linux CPython ``version`` on ``arch``.

    The patch level is unknown: ``.0``, the lowest, stands for it."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": MACHINE_OF[arch],
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{version}.0",
        "python_version": version,
        "sys_platform": "linux",
    }


def holds(requirement: Requirement, environment: dict[str, str], extras: set[str]) -> bool:
    """Whether ``requirement`` applies there, to a distribution asked with ``extras``."""
    marker = requirement.marker
    return marker is None or any(
        marker.evaluate({**environment, "extra": extra}) for extra in ("", *sorted(extras))
    )


def by_name(requirement: Requirement) -> str:
    """``requirement`` without its marker, for pip to fetch whatever Python it runs on."""
    bare = Requirement(str(requirement))
    bare.marker = None
    return str(bare)


def wanted(requires: list[str], environment: dict[str, str]) -> list[str]:
    """Those of aws-wodle's ``requires`` that hold in ``environment``, without markers."""
    return [by_name(r) for r in map(Requirement, requires) if holds(r, environment, set())]


def missing(folder: Path, asked: list[str], environment: dict[str, str]) -> list[str]:
    """What the requirements ``asked`` need in ``environment``, through the requirements of
    the wheels in ``folder`` (the newest that fits, as pip picks), that no wheel there meets."""
    wheels: dict[str, list[tuple[Version, Path]]] = {}
    for wheel in folder.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        wheels.setdefault(name, []).append((version, wheel))
    lacking: list[str] = []
    todo = [Requirement(line) for line in asked]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        if str(requirement) in seen:
            continue
        seen.add(str(requirement))
        fits = [
            (version, wheel)
            for version, wheel in wheels.get(canonicalize_name(requirement.name), [])
            if requirement.specifier.contains(version, prereleases=True)
        ]
        if not fits:
            lacking.append(by_name(requirement))
            continue
        _, wheel = max(fits)
        todo += [
            r
            for r in map(Requirement, requirements(wheel, extras=True))
            if holds(r, environment, requirement.extras)
        ]
    return sorted(set(lacking))


def dependency_wheels(
    wheel: Path, arch: str, pythons: tuple[str, ...], folder: Path | None = None
) -> Path:
    """The folder of dependency wheels for every Python in ``pythons``, cached by key in
    ``folder`` (``build/wheels/ARCH`` by default; another package keeps its own)."""
    folder = folder or BUILD / "wheels" / arch
    requires = requirements(wheel)
    # Per Python, the requirements that hold there: a change of marker fetches again.
    per_python = {v: wanted(requires, marker_environment(v, arch)) for v in pythons}
    key = json.dumps({"requires": requires, "pythons": per_python, "arch": arch})
    stamp = folder / "key.json"
    if stamp.is_file() and stamp.read_text() == key:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    platforms = [arg for p in PLATFORMS[arch] for arg in ("--platform", p)]
    with tempfile.TemporaryDirectory(dir=BUILD) as scratch:
        for version in pythons:
            tag = "cp" + version.replace(".", "")
            environment = marker_environment(version, arch)
            # This Python's own folder: what pip chose for another must not stand in for it.
            own = Path(scratch, version)
            asked = per_python[version]
            for _ in range(ROUNDS):
                run(
                    sys.executable, "-m", "pip", "download", "--quiet",
                    "--disable-pip-version-check", "--only-binary=:all:", "--implementation",
                    "cp", "--python-version", version, "--abi", tag, "--abi", "abi3",
                    "--abi", "none", *platforms, "--dest", str(own), *asked,
                )  # fmt: skip
                lacking = missing(own, asked, environment)
                if not lacking:
                    break
                if set(lacking) <= set(asked):  # asked already, yet pip chose otherwise
                    raise SystemExit(f"Python {version}: no wheels found for {lacking}")
                asked = asked + sorted(set(lacking) - set(asked))
            else:
                raise SystemExit(f"Python {version}: no wheels found for {lacking}")
            for found in own.glob("*.whl"):
                shutil.copyfile(found, folder / found.name)
    stamp.write_text(key)
    return folder


# What the package is made of: a change in any of these builds it again.
INPUTS = ("pyproject.toml", "README.md", "etc", "src", "systemd", "packaging")


def inputs_digest(*extra: str) -> str:
    """A digest of every input file and of ``extra`` (version, architecture, Pythons)."""
    digest = hashlib.sha256("\0".join(extra).encode())
    for name in INPUTS:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def package_arch(wheels: Path, arch: str) -> str:
    """``all`` when every wheel is pure Python, else the architecture they were fetched for."""
    pure = all(w.name.endswith("-none-any.whl") for w in wheels.glob("*.whl"))
    return "all" if pure else arch


def python_bounds(pythons: tuple[str, ...], arch: str) -> str:
    """The python3 versions the wheels serve: from the oldest; below the next one after the
    newest too when compiled wheels tie them to these versions."""
    versions = sorted(tuple(int(n) for n in v.split(".")) for v in pythons)
    low, high = versions[0], versions[-1]
    bounds = f"python3 (>= {low[0]}.{low[1]})"
    if arch != "all":
        bounds += f", python3 (<< {high[0]}.{high[1] + 1})"
    return bounds


def control(version: str, arch: str, pythons: tuple[str, ...], size_kb: int) -> str:
    first, rest = DESCRIPTION.split("\n", 1)
    return (
        f"Package: {NAME}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        "Maintainer: aws-wodle maintainers <aws-wodle@users.noreply.github.com>\n"
        # python3-venv: the postinst's `python3 -m venv`; procps: the kill of ExecReload.
        f"Depends: {python_bounds(pythons, arch)}, python3-venv, procps\n"
        "Section: admin\n"
        "Priority: optional\n"
        f"Installed-Size: {size_kb}\n"
        "Homepage: https://github.com/aws-wodle/aws-wodle\n"
        f"Description: {first}\n{rest}\n"
    )


def install(source: Path, target: Path, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def stage_common(root: Path, *, units: str, own: Path, deps: Path) -> None:
    """What both packages hold: the units (in ``units``), the wheels, the examples, rules
    and README as documentation, and the folder of the /usr/bin link."""
    for unit in UNITS:
        install(ROOT / "systemd" / unit, root / units / unit)
    wheels = root / "usr/share/aws-wodle/wheels"
    install(own, wheels / own.name)
    for wheel in sorted(deps.glob("*.whl")):
        install(wheel, wheels / wheel.name)
    doc = root / "usr/share/doc" / NAME
    install(ROOT / "etc/ossec.conf.example", doc / "ossec.conf.example")
    install(ROOT / "etc/aws-wodle.toml.example", doc / "aws-wodle.toml.example")
    install(ROOT / "etc/rules/aws-wodle_rules.xml", doc / "rules" / "aws-wodle_rules.xml")
    install(ROOT / "README.md", doc / "README.md")
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)


def stage(
    root: Path, *, version: str, arch: str, pythons: tuple[str, ...], own: Path, deps: Path
) -> None:
    """Lay out the package's files under ``root``."""
    stage_common(root, units="lib/systemd/system", own=own, deps=deps)
    install(PACKAGING / "debian/copyright", root / "usr/share/doc" / NAME / "copyright")
    (root / "usr/bin" / NAME).symlink_to(f"/opt/{NAME}/bin/{NAME}")
    meta = root / "DEBIAN"
    for script in SCRIPTS:
        install(PACKAGING / "debian" / script, meta / script, 0o755)
    install(PACKAGING / "debian/triggers", meta / "triggers")
    sums = []
    size = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("DEBIAN") or path.is_symlink() or not path.is_file():
            continue
        size += path.stat().st_size
        sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {relative}\n")  # noqa: S324 - dpkg's md5sums format
    (meta / "md5sums").write_text("".join(sums))
    (meta / "control").write_text(control(version, arch, pythons, (size + 1023) // 1024))
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--version", help="package version (default: pyproject.toml's)")
    parser.add_argument(
        "--arch",
        default=MACHINES.get(platform.machine(), "amd64"),
        choices=sorted(PLATFORMS),
        help="architecture of compiled wheels, if any are needed (default: %(default)s)",
    )
    parser.add_argument(
        "--pythons",
        default=",".join(DEFAULT_PYTHONS),
        help="CPython versions to carry wheels for (default: %(default)s)",
    )
    parser.add_argument("--out", default=str(ROOT / "dist"), help="default: %(default)s")
    args = parser.parse_args()
    if shutil.which("dpkg-deb") is None:
        raise SystemExit("dpkg-deb is missing: apt-get install dpkg")
    version = args.version or project_version()
    pythons = tuple(v.strip() for v in args.pythons.split(",") if v.strip())
    out = Path(args.out).resolve()
    key = inputs_digest(version, args.arch, str(out), *pythons)
    stamp = BUILD / "deb.inputs"
    if stamp.is_file():
        built_key, _, built = stamp.read_text().partition("\n")
        if built_key == key and Path(built).is_file():
            print(built)  # nothing changed since it was built
            return 0
    BUILD.mkdir(exist_ok=True)
    own = build_own_wheel(BUILD / "deb-own-wheel")
    deps = dependency_wheels(own, args.arch, pythons)
    arch = package_arch(deps, args.arch)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{NAME}_{version}_{arch}.deb"
    with tempfile.TemporaryDirectory(dir=BUILD) as scratch:
        root = Path(scratch) / "root"
        root.mkdir()
        os.umask(0o022)
        stage(root, version=version, arch=arch, pythons=pythons, own=own, deps=deps)
        # gzip: the wheels are compressed already; xz would take a minute to save 4 %.
        run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(target))
    stamp.write_text(f"{key}\n{target}")
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
