"""The .rpm that `make rpm` builds: its payload, and its scriptlets run by rpm itself.

The payload is read with rpm's own queries. The scriptlets run as rpm runs them on a RHEL
host, by ``rpm --root``: it chroots into a scratch root and runs %post, %posttrans, %preun
and %postun with their ``$1``. That root is the Debian 12 image of tests/nspawn.py (built
once by debootstrap, cached) under a throwaway overlay: it has /usr/bin/python3.11 and its
venv module, as RHEL's python3.11 package does; it is not a RHEL userland, and no systemd
runs in it, so the scriptlets' systemctl branches are left to a booted system. rpm and
rpmlint are Debian's packages, installed when missing; everything here needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import nspawn
from conftest import ROOT
from test_packaging import resolve_offline

UNITS = ("aws-wodle.service", "aws-wodle@.service")
WHEELS = "/usr/share/aws-wodle/wheels"
DB = "/var/lib/rpm"  # the scratch root's rpm database, inside it
SCRIPTLETS = ("postinstall", "posttrans", "preuninstall", "postuninstall")


def sh(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=600
    )


def ensure_rpm() -> None:
    """rpm (rpmbuild, rpm2cpio) and rpmlint from Debian's archive, installed if missing."""
    if shutil.which("rpmbuild") and shutil.which("rpmlint") and shutil.which("rpm2cpio"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("rpm or rpmlint missing, and no apt-get as root to install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = sh("apt-get", "install", "-y", "-q", "rpm", "rpmlint", env=env)
    if result.returncode != 0:
        sh("apt-get", "update", "-q", env=env)
        result = sh("apt-get", "install", "-y", "-q", "rpm", "rpmlint", env=env)
    assert result.returncode == 0, result.stderr


def build_rpm(*args: str) -> Path:
    """The path of the package `packaging/build_rpm.py ARGS` builds (or had built)."""
    ensure_rpm()
    with nspawn.locked(ROOT / "build" / ".rpm.lock"):
        result = sh(sys.executable, str(ROOT / "packaging" / "build_rpm.py"), *args)
    assert result.returncode == 0, f"packaging/build_rpm.py failed:\n{result.stderr[-3000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


def query(rpm: Path, *options: str) -> str:
    result = sh("rpm", "-qp", *options, str(rpm))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def package() -> Path:
    """make rpm's package for this tree."""
    return build_rpm()


def test_rpm_payload_units_command_wheels_and_requires(package: Path, tmp_path: Path) -> None:
    """The package is noarch, named for pyproject's version, needs python3.11, and holds the
    units as in systemd/ (in /usr/lib/systemd/system), the command as a link into
    /opt/aws-wodle (owned, built at install), the examples and the pure wheels."""
    version = query(package, "--qf", "%{VERSION}-%{RELEASE}.%{ARCH}")
    assert package.name == f"aws-wodle-{version}.rpm"
    assert version.endswith("-1.noarch")
    requires = set(query(package, "--requires").splitlines())
    assert {"python3.11", "/usr/bin/kill", "/bin/sh"} <= requires
    listing = query(package, "-l").splitlines()
    wheels = {p.rsplit("/", 1)[1] for p in listing if p.startswith(f"{WHEELS}/")}
    assert set(listing) - {f"{WHEELS}/{w}" for w in wheels} == {
        "/opt/aws-wodle",
        "/usr/bin/aws-wodle",
        "/usr/lib/systemd/system/aws-wodle.service",
        "/usr/lib/systemd/system/aws-wodle@.service",
        "/usr/share/aws-wodle",
        WHEELS,
        "/usr/share/doc/aws-wodle",
        "/usr/share/doc/aws-wodle/README.md",
        "/usr/share/doc/aws-wodle/aws-wodle.toml.example",
        "/usr/share/doc/aws-wodle/ossec.conf.example",
        "/usr/share/doc/aws-wodle/rules",
        "/usr/share/doc/aws-wodle/rules/aws-wodle_rules.xml",
        "/usr/share/licenses/aws-wodle/copyright",
    }
    for name in ("aws_wodle-", "boto3-", "botocore-", "python_dateutil-"):
        assert any(w.startswith(name) for w in wheels), name
    assert all(w.endswith("-none-any.whl") for w in wheels)  # hence noarch
    ghosts = query(package, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]").splitlines()
    assert "/opt/aws-wodle g" in ghosts
    links = query(package, "--qf", "[%{FILENAMES} -> %{FILELINKTOS}\n]")
    assert "/usr/bin/aws-wodle -> ../../opt/aws-wodle/bin/aws-wodle" in links
    cpio = subprocess.run(["rpm2cpio", str(package)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=tmp_path, check=True)
    for unit in UNITS:
        shipped = (tmp_path / "usr/lib/systemd/system" / unit).read_bytes()
        assert shipped == (ROOT / "systemd" / unit).read_bytes()


def test_rpm_scriptlets_are_sh_on_python311(package: Path, tmp_path: Path) -> None:
    """%post, %posttrans, %preun and %postun are there, each valid sh; the virtualenv is
    built with /usr/bin/python3.11, and no rpm macro was left in them unexpanded."""
    scripts = query(package, "--scripts")
    bodies: dict[str, str] = {}
    name = ""
    for line in scripts.splitlines(keepends=True):
        if line.endswith("scriptlet (using /bin/sh):\n"):
            name = line.split()[0]
            bodies[name] = ""
        else:
            bodies[name] += line
    assert sorted(bodies) == sorted(SCRIPTLETS)
    for name, body in bodies.items():
        path = tmp_path / name
        path.write_text(body)
        result = sh("sh", "-n", str(path))
        assert result.returncode == 0, (name, result.stderr)
        assert "%{" not in body, name
    assert "PYTHON=/usr/bin/python3.11" in bodies["posttrans"]
    assert '"%d.%d"' not in scripts  # the posttrans has no format for rpm to mangle


def test_rpm_wheels_resolve_offline_for_python311(package: Path, tmp_path: Path) -> None:
    """pip's resolver finds among the package's wheels alone all that aws-wodle needs on
    CPython 3.11, markers judged for 3.11 (no tomli, which 3.11 has built in)."""
    cpio = subprocess.run(["rpm2cpio", str(package)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=tmp_path, check=True)
    chosen = resolve_offline(tmp_path / WHEELS.lstrip("/"), "3.11", tmp_path)
    assert {"aws-wodle", "boto3", "botocore", "python-dateutil"} <= chosen.keys()
    assert "tomli" not in chosen
    shipped = {p.name.split("-", 1)[0].replace("_", "-") for p in (tmp_path / WHEELS[1:]).iterdir()}
    assert shipped == set(chosen), "the package carries exactly what 3.11 installs"


def test_rpmlint_finds_nothing_unexplained(package: Path) -> None:
    """rpmlint reports no error and no warning beyond the filters packaging/rpm's
    rpmlintrc justifies one by one, and none of those filters is unused."""
    result = sh("rpmlint", "-r", str(ROOT / "packaging/rpm/aws-wodle.rpmlintrc"), str(package))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors, 0 warnings" in result.stdout, result.stdout


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    """A throwaway root: the cached Debian 12 image (python3.11 at /usr/bin) under an
    overlay, so that nothing written reaches the image."""
    for reason in (nspawn.why_not(), nspawn.ensure_tools()):
        if reason is not None:
            pytest.skip(f"no scratch root here: {reason}")
    try:
        image = nspawn.base_image()
    except RuntimeError as exc:
        pytest.skip(f"cannot build the Debian 12 image: {exc}")
    top = Path(tempfile.mkdtemp(prefix="aws-wodle-rpmroot-"))
    for part in ("upper", "work", "root"):
        (top / part).mkdir()
    root = top / "root"
    options = f"lowerdir={image},upperdir={top / 'upper'},workdir={top / 'work'}"
    mounted = sh("mount", "-t", "overlay", "overlay", "-o", options, str(root))
    if mounted.returncode != 0:
        shutil.rmtree(top)
        pytest.skip(f"no overlay mount here: {mounted.stderr.strip()}")
    try:
        assert (root / "usr/bin/python3.11").exists()
        yield root
    finally:
        sh("umount", str(root))
        shutil.rmtree(top, ignore_errors=True)


def rpm_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """rpm on the scratch root, its database inside it. The caller's environment carries
    pip and Python settings that must not reach the virtualenv."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "PIP_FIND_LINKS": "/nowhere",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PYTHONPATH": "/nowhere",
    }
    return sh("rpm", "--root", str(root), "--dbpath", DB, *args, env=env)


def inside(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return sh("chroot", str(root), *command, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_rpm_install_upgrade_erase_in_scratch_root(package: Path, scratch_root: Path) -> None:
    """Run by rpm: install builds /opt/aws-wodle on python3.11 offline and says the
    manager's user is missing; an upgrade rebuilds it, keeps the enable links and makes the
    state directory for wazuh; erase removes the virtualenv and the links, keeps the state."""
    # --nodeps: the root has Debian's python3.11, not a python3.11 package rpm knows.
    root = scratch_root
    installed = rpm_in(root, "-i", "--nodeps", str(package))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "no user 'wazuh' here" in installed.stderr
    assert "installed, not started" in installed.stdout
    assert "WARNING" not in installed.stderr  # pip saw no PIP_FIND_LINKS, no PYTHONPATH
    version = inside(root, "/usr/bin/aws-wodle", "--version")
    assert version.returncode == 0, version.stderr
    assert (root / "opt/aws-wodle/bin/python").resolve().name == "python3.11"
    assert not (root / "var/ossec/var/aws-wodle").exists()
    owned = rpm_in(root, "-qf", "/opt/aws-wodle", "/usr/lib/systemd/system/aws-wodle.service")
    assert owned.stdout.splitlines() == [package.name.removesuffix(".rpm")] * 2
    verified = rpm_in(root, "-V", "--nodeps", "aws-wodle")
    assert verified.returncode == 0, verified.stdout  # the venv left the payload as shipped

    # The operator enables the units (systemctl writes the links offline with --root), the
    # manager arrives with its user, and a newer package comes.
    enabled = sh("systemctl", f"--root={root}", "enable", "aws-wodle.service", "aws-wodle@prod")
    assert enabled.returncode == 0, enabled.stderr
    links = sorted((root / "etc/systemd/system").glob("*.wants/aws-wodle*"))
    assert len(links) == 2
    assert inside(root, "useradd", "--system", "--user-group", "wazuh").returncode == 0
    (root / "opt/aws-wodle/old-venv").touch()
    base = package.name.split("-")[2]
    newer = build_rpm("--version", f"{base}.1", "--out", str(root.parent))
    upgraded = rpm_in(root, "-U", "--nodeps", str(newer))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "not started" not in upgraded.stdout
    assert "no user" not in upgraded.stderr
    assert not (root / "opt/aws-wodle/old-venv").exists()  # rebuilt in %posttrans
    assert inside(root, "/usr/bin/aws-wodle", "--version").returncode == 0  # kept by %preun 1
    assert rpm_in(root, "-q", "aws-wodle").stdout.split() == [f"aws-wodle-{base}.1-1.noarch"]
    assert sorted((root / "etc/systemd/system").glob("*.wants/aws-wodle*")) == links
    state = root / "var/ossec/var/aws-wodle"
    owner = inside(root, "stat", "-c", "%U:%G %a", "/var/ossec/var/aws-wodle")
    assert owner.stdout.split()[0] == "wazuh:wazuh", owner.stdout
    (state / "state.db").write_text("positions")

    erased = rpm_in(root, "-e", "--nodeps", "aws-wodle")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert not (root / "opt/aws-wodle").exists()
    assert not (root / "usr/bin/aws-wodle").is_symlink()
    assert not any(path.is_symlink() for path in links)
    assert not (root / "usr/lib/systemd/system/aws-wodle.service").exists()
    assert (state / "state.db").read_text() == "positions"
    assert rpm_in(root, "-q", "aws-wodle").returncode != 0
