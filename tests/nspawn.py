"""Debian containers booted under their own systemd, for the tests that need a real one.

``ensure_tools`` installs systemd-nspawn and debootstrap (Debian's packages) when missing,
``base_image`` builds a minimal root of a Debian suite (bookworm, 12; trixie, 13) once with
debootstrap from this machine's own Debian mirror and caches it under ``/var/lib/machines/``,
one image a suite, and ``Container`` boots one with ``systemd-nspawn --boot --register=no
--keep-unit`` (this machine's PID 1 is not systemd), on an overlay that keeps the image
unchanged and with only its own loopback for network. Commands run inside through
``nsenter``. Everything here needs root; ``why_not`` says plainly when this machine cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

MACHINES = Path("/var/lib/machines")
# The suites a container can run, with their Debian release; each has its own cached image,
# a minbase plus what our package depends on and systemd to boot.
SUITES = {"bookworm": "12", "trixie": "13"}
IMAGE_PACKAGES = ("systemd", "python3", "python3-venv", "procps")
# Written into the image last: an image without it is unfinished and built again.
IMAGE_MARK = ".aws-wodle-image"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(
    command: list[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=timeout
    )


def why_not() -> str | None:
    """Why this machine cannot boot the container (then the tests skip), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: systemd-nspawn and debootstrap run as root"
    if not Path("/proc/self/ns/mnt").exists():
        return "needs Linux namespaces (/proc/self/ns)"
    return None


def ensure_tools() -> str | None:
    """Install systemd-nspawn and debootstrap if missing; the reason they are not, or None."""
    wanted = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap"}
    missing = [pkg for tool, pkg in wanted.items() if shutil.which(tool) is None]
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"{' and '.join(missing)} missing, and no apt-get to install them"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = run(["apt-get", "install", "-y", "-q", *missing], env=env)
    if result.returncode != 0:
        run(["apt-get", "update", "-q"], env=env)
        result = run(["apt-get", "install", "-y", "-q", *missing], env=env)
    if result.returncode != 0:
        return f"cannot install {' '.join(missing)}: {result.stderr.strip()[-300:]}"
    return None


def image_path(suite: str) -> Path:
    """Where the cached image of ``suite`` lives."""
    return MACHINES / f"aws-wodle-{suite}"


def debian_mirror(suite: str = "bookworm") -> str:
    """The Debian mirror this machine's apt uses (the only one its network may reach): the
    source that lists ``suite``, else the one that lists this machine's own Debian suite."""
    known = set(SUITES)
    found: list[tuple[set[str], str]] = []
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for block in source.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", block, re.MULTILINE)
            if uris and suites:
                found.append((set(suites.group(1).split()), uris.group(1)))
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", " ", line).split()  # without [options]
            if len(parts) >= 3 and parts[0] == "deb":
                found.append(({parts[2]}, parts[1]))
    for names, uri in found:
        if suite in names:
            return uri
    for names, uri in found:
        if names & known:
            return uri
    return DEFAULT_MIRROR


def suite_missing(suite: str, mirror: str) -> str | None:
    """Why ``mirror`` does not serve ``suite`` (its Release file fetched through apt, with
    apt's own proxy and settings), or None when it does."""
    helper = Path("/usr/lib/apt/apt-helper")
    if not helper.exists():
        return None  # debootstrap will tell
    with tempfile.TemporaryDirectory() as folder:
        release = Path(folder) / "Release"
        url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
        try:
            result = run([str(helper), "download-file", url, str(release)], timeout=120)
        except subprocess.TimeoutExpired:
            return f"{url} did not answer in 120 s"
        if result.returncode != 0 or not release.is_file():
            said = [ln for ln in result.stderr.splitlines() if ln.startswith("E:")]
            return f"{url} is not reachable: {' '.join(said[:1]) or result.returncode}"
        codename = re.search(r"^Codename:\s*(\S+)", release.read_text(), re.MULTILINE)
        if codename is None or codename.group(1) != suite:
            return f"{url} is not {suite}'s Release file"
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock between test processes (pytest-xdist workers, parallel runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_image(suite: str = "bookworm") -> Path:
    """The cached image of ``suite``, built with debootstrap the first time (about a
    minute); a RuntimeError says why it cannot be."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}: one of {', '.join(SUITES)}")
    image = image_path(suite)
    mark = ",".join(IMAGE_PACKAGES)
    with locked(MACHINES / f".aws-wodle-{suite}.lock"):
        done = image / IMAGE_MARK
        if done.is_file() and done.read_text() == mark:
            return image
        mirror = debian_mirror(suite)
        reason = suite_missing(suite, mirror)
        if reason is not None:
            raise RuntimeError(reason)
        scratch = Path(tempfile.mkdtemp(prefix=f".aws-wodle-{suite}-", dir=MACHINES))
        try:
            result = run(
                ["debootstrap", "--variant=minbase", f"--include={mark}", suite, str(scratch),
                 mirror],
            )  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap {suite} failed: {result.stdout[-2000:]}")
            (scratch / IMAGE_MARK).write_text(mark)
            shutil.rmtree(image, ignore_errors=True)
            scratch.rename(image)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return image


class Container:
    """A booted container; ``sh`` runs a shell command inside, ``path`` maps a path inside
    to where the host sees it."""

    def __init__(self, image: Path, binds: Mapping[str, str], log: Path) -> None:
        self.log = log
        command = [
            "systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--private-network",
            "--volatile=overlay", "--console=passive", f"--directory={image}",
            f"--machine=aws-wodle-test-{os.getpid()}",
            *(f"--bind={host}:{inside}" for host, inside in binds.items()),
        ]  # fmt: skip
        if shutil.which("setpriv") is not None:
            # Powered off (SIGTERM) when the test process dies, however it dies.
            command = ["setpriv", "--pdeathsig", "TERM", "--", *command]
        with log.open("w") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self.leader = self._find_leader()
        self._wait_running()

    def _find_leader(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.log.read_text()[-2000:]}")
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.proc.pid:
                        return int(entry.name)
            time.sleep(0.05)
        raise RuntimeError("the container's init did not appear")

    def _wait_running(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.sh("systemctl is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the container did not finish booting: {state}")

    def sh(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``/bin/sh -c script`` as root inside, with a clean environment."""
        return run(
            ["nsenter", f"--target={self.leader}", "--all", "--", "/usr/bin/env", "-i",
             f"PATH={INSIDE_PATH}", "LANG=C.UTF-8", "/bin/sh", "-c", script],
            timeout=timeout,
        )  # fmt: skip

    def check(self, script: str, timeout: float = 120) -> str:
        """Like ``sh``, failing on a non-zero exit; returns stdout."""
        result = self.sh(script, timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"{script!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def path(self, inside: str) -> Path:
        """Where the host reads and writes the container's file ``inside``."""
        return Path(f"/proc/{self.leader}/root") / inside.lstrip("/")

    def stop(self) -> None:
        """Power the container off (SIGTERM to nspawn), killing it after 30 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
