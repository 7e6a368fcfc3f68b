"""The package under a real systemd: Debian 12 and Debian 13 containers booted with
systemd-nspawn, one after the other.

The module builds the .deb (packaging/build_deb.py), installs it in each container with apt
as an operator does, and checks the units there for real: readiness, status, events through
the hardening to a stand-in manager's queue socket, reload, watchdog, restarts with the
manager, exit codes, journal priorities and the state directory, for the main unit and for
a template instance; then upgrade and removal. CloudWatch Logs is a moto server on the host,
seeded once for both suites and reached from the container's loopback through two relays
(the container has no network). It needs root; without it, or without systemd-nspawn, it
says why it skips, and a suite the mirror does not serve is skipped on its own.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import nspawn
from conftest import MotoServer, now_ms, seed
from debpkg import build_deb

# One worker runs them all, in order, on one container a suite, bookworm's tests first
# (make test uses --dist loadfile; a module-scoped parameter keeps a suite's tests together).

HERE = Path(__file__).resolve().parent
SHARED = "/srv/test"  # the host folder bound into the container
RECORD = "received.jsonl"  # what the stand-in manager received, one JSON string a line
HEADER = "1:Wazuh-AWS:"
ENDPOINT = "http://127.0.0.1:4566"  # the container's end of the relay to moto
ACCOUNT = "123456789012"  # moto's account
# Past the collector's settle margin (30 s by default): events put before it are readable.
SETTLE_SECONDS = 31.0
RESTART_SECONDS = 5.0  # the units' RestartSec=

MANAGER_UNIT = f"""\
[Unit]
Description=Stand-in for the Wazuh manager: binds its analysis queue, records what arrives
[Service]
Type=notify
User=wazuh
Group=wazuh
ExecStart=/usr/bin/python3 {SHARED}/manager.py /var/ossec/queue/sockets/queue {SHARED}/{RECORD}
[Install]
WantedBy=multi-user.target
"""
RELAY_UNIT = f"""\
[Unit]
Description=Relay from the loopback to the moto server on the host
[Service]
ExecStart=/usr/bin/python3 {SHARED}/relay.py tcp:127.0.0.1:4566 unix:{SHARED}/moto.sock
[Install]
WantedBy=multi-user.target
"""
CREDENTIALS = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
# The Debian suites the package is booted on, and the python3 each one has.
SUITES = {"bookworm": "3.11", "trixie": "3.13"}


@dataclass(frozen=True)
class Flavor:
    """A unit under test: its name, its config and state files, and its groups' prefix."""

    unit: str
    config: str
    state: str
    prefix: str

    def group(self, name: str) -> str:
        return f"{self.prefix}-{name}"


FLAVORS = [
    Flavor(
        "aws-wodle.service", "/var/ossec/etc/ossec.conf", "/var/ossec/var/aws-wodle/state.db",
        "main",
    ),
    Flavor(
        "aws-wodle@prod.service", "/var/ossec/etc/aws-wodle/prod.conf",
        "/var/ossec/var/aws-wodle/prod.db", "prod",
    ),
]  # fmt: skip
UNITS = " ".join(f.unit for f in FLAVORS)
# What each group holds: (stream, messages). "imported" starts where the old module stopped.
SEEDS = {"app": 3, "added": 2, "imported": 10}
IMPORTED_END = 4  # the old module's end_time: the event at index 4 was its last one sent


def messages(flavor: Flavor, group: str) -> list[str]:
    return [f"{flavor.group(group)}-{i}" for i in range(SEEDS[group])]


def wodle_config(flavor: Flavor, groups: Sequence[str], interval: str = "1h") -> str:
    """An ossec.conf-syntax file: an <ossec_config> with a manager section and one wodle."""
    names = ",".join(flavor.group(g) for g in groups)
    return f"""\
<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
  </global>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>{interval}</interval>
    <run_on_start>yes</run_on_start>
    <service type="cloudwatchlogs">
      <aws_profile>default</aws_profile>
      <aws_log_groups>{names}</aws_log_groups>
      <regions>us-east-1</regions>
      <only_logs_after>2020-JAN-01</only_logs_after>
      <service_endpoint>{ENDPOINT}</service_endpoint>
      <sts_endpoint>{ENDPOINT}</sts_endpoint>
    </service>
  </wodle>
</ossec_config>
"""


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Cloud:
    """What both suites share: the package, and moto seeded once, reachable through a Unix
    socket in the folder that each container gets bound at SHARED."""

    shared: Path
    deb: Path
    seeded_at: float
    seed_start: int


@dataclass
class Machine:
    """The booted container with the package installed, and what the tests need around it."""

    suite: str
    box: nspawn.Container
    shared: Path
    deb: Path
    first_install: subprocess.CompletedProcess[str]
    seeded_at: float
    seed_start: int

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.box.check(f"systemctl show {' '.join('-p ' + p for p in props)} {unit}")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def prop(self, unit: str, name: str) -> str:
        return self.show(unit, name)[name]

    def received(self) -> list[str]:
        path = self.shared / RECORD
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            data = json.loads(line)
            assert data.startswith(HEADER), data
            out.append(data[len(HEADER) :])
        return out

    def write(self, inside: str, text: str, owner: str = "root:wazuh", mode: str = "0640") -> None:
        target = self.box.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.box.check(f"chown {owner} {inside} && chmod {mode} {inside}")

    def settled(self) -> None:
        """Wait until the seeded events are older than the collector's settle margin."""
        left = self.seeded_at + SETTLE_SECONDS - time.monotonic()
        if left > 0:
            time.sleep(left)

    def journal(self, unit: str, since: float, priority: str | None = None) -> str:
        extra = f" -p {priority}" if priority else ""
        return self.box.check(
            f"journalctl --no-pager -o cat -u {unit} --since=@{int(since) - 1}{extra}"
        )

    def installed(self) -> bool:
        return (
            "install ok installed" in self.box.sh("dpkg-query -W -f='${Status}' aws-wodle").stdout
        )

    def install(self, deb: Path) -> subprocess.CompletedProcess[str]:
        shutil.copyfile(deb, self.shared / deb.name)
        return self.box.sh(
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y {SHARED}/{deb.name}", timeout=300
        )

    def reset(self, flavor: Flavor, groups: Sequence[str] = ("app",), *, fresh: bool) -> None:
        """Stop every unit, drop test drop-ins, write the flavor's config, make sure the
        package and the manager are there; ``fresh`` also forgets the flavor's state."""
        if not self.installed():
            result = self.install(self.deb)
            assert result.returncode == 0, result.stdout + result.stderr
        self.box.sh(
            f"systemctl stop {UNITS}; systemctl disable -q {UNITS}; systemctl reset-failed {UNITS}"
        )
        if self.box.sh("ls -d /run/systemd/system/aws-wodle*.d").returncode == 0:
            self.box.check("rm -rf /run/systemd/system/aws-wodle*.d && systemctl daemon-reload")
        self.box.check("systemctl start wazuh-manager")
        self.write(flavor.config, wodle_config(flavor, groups), mode="0660")
        if fresh:
            self.box.check(f"rm -f {flavor.state} {flavor.state}-wal {flavor.state}-shm")
        (self.shared / RECORD).write_text("")
        self.settled()

    def main_pid(self, unit: str) -> int:
        return int(self.prop(unit, "MainPID"))

    def running(self, unit: str) -> bool:
        info = self.show(unit, "ActiveState", "SubState")
        return (info["ActiveState"], info["SubState"]) == ("active", "running")


def provision(box: nspawn.Container) -> None:
    """The manager's side, as a Wazuh install leaves it: its user, /var/ossec, the queue
    socket (the stand-in), credentials for the service in /var/ossec/.aws; and the relay."""
    box.check(
        "useradd --system --user-group --home-dir /var/ossec --no-create-home "
        "--shell /usr/sbin/nologin wazuh"
        " && install -d -o root -g wazuh -m 0750 /var/ossec /var/ossec/.aws"
        " && install -d -o root -g wazuh -m 0770 /var/ossec/etc /var/ossec/var"
        " && install -d -o root -g wazuh -m 0770 /var/ossec/etc/aws-wodle"
        " && install -d -o wazuh -g wazuh -m 0770 /var/ossec/queue /var/ossec/queue/sockets"
    )
    for name, text in (("wazuh-manager.service", MANAGER_UNIT), ("moto-relay.service", RELAY_UNIT)):
        target = box.path(f"/etc/systemd/system/{name}")
        target.write_text(text)
    target = box.path("/var/ossec/.aws/credentials")
    target.write_text(CREDENTIALS)
    box.check(
        "chown root:wazuh /var/ossec/.aws/credentials && chmod 0640 /var/ossec/.aws/credentials"
    )
    box.check("systemctl daemon-reload && systemctl enable -q --now moto-relay wazuh-manager")


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    """The .deb built once, and moto seeded once for both suites, with the host's relay."""
    # A first run builds the package and the Debian images (minutes): not a hang to report.
    faulthandler.cancel_dump_traceback_later()
    for reason in (nspawn.why_not(), nspawn.ensure_tools()):
        if reason is not None:
            pytest.skip(f"no real systemd here: {reason}")
    if "AWS_WODLE_DEB" not in os.environ and shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is missing: the package cannot be built here")
    # AWS_WODLE_DEB tests a package built elsewhere (a release candidate) instead.
    deb = Path(os.environ["AWS_WODLE_DEB"]) if "AWS_WODLE_DEB" in os.environ else build_deb()
    shared = Path(tempfile.mkdtemp(prefix="aws-wodle-systemd-"))
    shared.chmod(0o777)  # the stand-in manager, as wazuh, writes its record there
    for script in ("manager.py", "relay.py"):
        shutil.copyfile(HERE / "container" / script, shared / script)
    moto = MotoServer()
    relay = subprocess.Popen(
        [sys.executable, str(HERE / "container" / "relay.py"), f"unix:{shared}/moto.sock",
         f"tcp:127.0.0.1:{moto.port}"],
    )  # fmt: skip
    try:
        logs = moto.client()
        start = now_ms() - 120_000
        for flavor in FLAVORS:
            for group in SEEDS:
                seed(logs, flavor.group(group), {"s": messages(flavor, group)}, start=start)
        yield Cloud(shared, deb, time.monotonic(), start)
    finally:
        relay.kill()
        relay.wait()
        moto.stop()
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module", params=list(SUITES))
def machine(request: pytest.FixtureRequest, cloud: Cloud) -> Iterator[Machine]:
    """A booted container of the suite with our .deb installed by apt, a stand-in manager
    and moto reachable; the package was installed before the manager's user existed."""
    suite: str = request.param
    faulthandler.cancel_dump_traceback_later()  # a first run builds the image (a minute)
    try:
        image = nspawn.base_image(suite)
    except RuntimeError as exc:
        pytest.skip(f"cannot build the Debian {nspawn.SUITES[suite]} ({suite}) image: {exc}")
    # The previous suite's record and packages go; the stand-in manager, as wazuh, creates
    # its record anew (one left by root would refuse it).
    for old in (cloud.shared / RECORD, *cloud.shared.glob("*.deb")):
        old.unlink(missing_ok=True)
    log = cloud.shared / f"nspawn-{suite}.log"
    try:
        box = nspawn.Container(image, {str(cloud.shared): SHARED}, log)
    except RuntimeError as exc:
        pytest.skip(f"systemd-nspawn cannot boot the {suite} container here: {exc}")
    try:
        machine = Machine(
            suite, box, cloud.shared, cloud.deb, subprocess.CompletedProcess([], 0),
            cloud.seeded_at, cloud.seed_start,
        )  # fmt: skip
        machine.first_install = machine.install(cloud.deb)
        assert machine.first_install.returncode == 0, machine.first_install.stdout
        provision(box)
        yield machine
    finally:
        box.stop()


# Install, as an operator does ------------------------------------------------------------


def test_apt_installs_the_package_without_starting_it(machine: Machine) -> None:
    """apt installs the .deb offline: a virtualenv of the suite's own python3 (3.11 on
    Debian 12, 3.13 on 13) under /opt, the command, both units, the example; nothing
    enabled or started; no manager user yet, so no state directory, and it says so."""
    box = machine.box
    said = machine.first_install.stdout + machine.first_install.stderr
    assert "no user 'wazuh'" in said
    assert "systemctl enable --now aws-wodle" in said
    assert "home = /usr/bin" in box.check("cat /opt/aws-wodle/pyvenv.cfg")
    python = "import sys; print('%d.%d' % sys.version_info[:2])"
    assert box.check(f'/opt/aws-wodle/bin/python -c "{python}"').strip() == SUITES[machine.suite]
    assert box.check("readlink /usr/bin/aws-wodle").strip() == "/opt/aws-wodle/bin/aws-wodle"
    version = box.check("runuser -u wazuh -- aws-wodle --version").strip()
    assert version.startswith("aws-wodle ")
    box.check("test -f /usr/share/doc/aws-wodle/ossec.conf.example")
    for unit in ("aws-wodle.service", "aws-wodle@.service"):
        text = box.path(f"/lib/systemd/system/{unit}").read_text()
        assert "ExecStart=/usr/bin/aws-wodle run " in text
    assert box.sh("systemctl is-enabled aws-wodle").stdout.strip() == "disabled"
    assert box.sh("systemctl is-active aws-wodle").stdout.strip() == "inactive"
    journal = box.check("journalctl --no-pager -o cat -u aws-wodle.service")
    assert "Started" not in journal


# Each check, for the main unit and for a template instance ------------------------------


@pytest.fixture(params=FLAVORS, ids=["main", "template"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    flavor: Flavor = request.param
    return flavor


def test_missing_state_directory_is_created(machine: Machine, flavor: Flavor) -> None:
    """With no state directory at all, start creates it for wazuh (mode 0750) instead of
    failing with 226/NAMESPACE, and the state file is wazuh's, mode 0600."""
    machine.reset(flavor, fresh=True)
    machine.box.check("rm -rf /var/ossec/var/aws-wodle")
    machine.box.check(f"systemctl start {flavor.unit}")
    assert machine.running(flavor.unit)
    wait_for(lambda: machine.box.sh(f"test -f {flavor.state}").returncode == 0, 30, "state")
    folder = machine.box.check("stat -c '%U %G %a' /var/ossec/var/aws-wodle").split()
    assert folder == ["wazuh", "wazuh", "750"]
    assert machine.box.check(f"stat -c '%U %a' {flavor.state}").split() == ["wazuh", "600"]


def test_start_waits_for_ready_and_events_reach_the_manager(
    machine: Machine, flavor: Flavor
) -> None:
    """systemctl start returns once the daemon said READY (active, not activating); STATUS
    tells the schedule, then the cycle's figures; the events reach the stand-in manager's
    socket through the hardening, sent by a process running as wazuh."""
    machine.reset(flavor, fresh=True)
    started = time.time()
    machine.box.check(f"systemctl start {flavor.unit}")
    info = machine.show(flavor.unit, "Type", "ActiveState", "SubState", "StatusText")
    assert info["Type"] == "notify"
    assert (info["ActiveState"], info["SubState"]) == ("active", "running"), info
    assert "wodles scheduled" in info["StatusText"] or "last cycle" in info["StatusText"]
    expected = messages(flavor, "app")
    wait_for(lambda: sorted(machine.received()) == expected, 30, "the events")
    wait_for(
        lambda: "3 events" in machine.prop(flavor.unit, "StatusText"), 10, "STATUS after a cycle"
    )
    pid = machine.main_pid(flavor.unit)
    assert machine.box.check(f"ps -o user= -p {pid}").strip() == "wazuh"
    assert "started" in machine.journal(flavor.unit, started)


def test_reload_applies_an_edit_and_refuses_a_bad_one(machine: Machine, flavor: Flavor) -> None:
    """systemctl reload re-reads the config: a new group is collected at once; an invalid
    edit is refused at error priority and the running configuration kept, same process."""
    machine.reset(flavor, fresh=True)
    machine.box.check(f"systemctl start {flavor.unit}")
    wait_for(lambda: len(machine.received()) == SEEDS["app"], 30, "the first cycle")
    pid = machine.main_pid(flavor.unit)
    since = time.time()
    machine.write(flavor.config, wodle_config(flavor, ["app", "added"]), mode="0660")
    machine.box.check(f"systemctl reload {flavor.unit}")
    expected = sorted(messages(flavor, "app") + messages(flavor, "added"))
    wait_for(lambda: sorted(machine.received()) == expected, 30, "the added group's events")
    assert "configuration reloaded" in machine.journal(flavor.unit, since)
    since = time.time()
    bad = wodle_config(flavor, ["app"]).replace(
        "<interval>1h</interval>", "<interval>often</interval>"
    )
    machine.write(flavor.config, bad, mode="0660")
    machine.box.check(f"systemctl reload {flavor.unit}")
    wait_for(
        lambda: "reload refused" in machine.journal(flavor.unit, since, "err"), 10, "the refusal"
    )
    assert machine.running(flavor.unit)
    assert machine.main_pid(flavor.unit) == pid
    assert machine.prop(flavor.unit, "StatusText").startswith("reload refused")


def test_watchdog_restarts_a_stopped_daemon(machine: Machine, flavor: Flavor) -> None:
    """A daemon frozen with SIGSTOP stops answering the watchdog (shortened to 3 s by a
    runtime drop-in): systemd kills it and starts a new one."""
    machine.reset(flavor, fresh=False)
    dropin = machine.box.path(f"/run/systemd/system/{flavor.unit}.d/watchdog.conf")
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Service]\nWatchdogSec=3s\n")
    machine.box.check(f"systemctl daemon-reload && systemctl start {flavor.unit}")
    pid = machine.main_pid(flavor.unit)
    since = time.time()
    machine.box.check(f"kill -STOP {pid}")
    wait_for(
        lambda: machine.running(flavor.unit) and machine.main_pid(flavor.unit) not in (0, pid),
        3 + RESTART_SECONDS + 15,
        "a new daemon",
    )
    assert "Watchdog timeout" in machine.journal(flavor.unit, since)


def test_kill_9_restarts(machine: Machine, flavor: Flavor) -> None:
    """A daemon killed with SIGKILL is started again after RestartSec."""
    machine.reset(flavor, fresh=False)
    machine.box.check(f"systemctl start {flavor.unit}")
    pid = machine.main_pid(flavor.unit)
    machine.box.check(f"kill -9 {pid}")
    wait_for(
        lambda: machine.running(flavor.unit) and machine.main_pid(flavor.unit) not in (0, pid),
        RESTART_SECONDS + 15,
        "a new daemon",
    )
    assert int(machine.prop(flavor.unit, "NRestarts")) >= 1


def test_manager_restart_restarts_us(machine: Machine, flavor: Flavor) -> None:
    """systemctl restart wazuh-manager restarts the collector too."""
    machine.reset(flavor, fresh=False)
    machine.box.check(f"systemctl start {flavor.unit}")
    pid = machine.main_pid(flavor.unit)
    machine.box.check("systemctl restart wazuh-manager")
    wait_for(
        lambda: machine.running(flavor.unit) and machine.main_pid(flavor.unit) not in (0, pid),
        20,
        "the collector restarted",
    )


def test_manager_start_after_a_stop_starts_us(machine: Machine, flavor: Flavor) -> None:
    """Enabled, the collector stops with the manager and starts again with it."""
    machine.reset(flavor, fresh=False)
    machine.box.check(f"systemctl enable -q --now {flavor.unit}")
    machine.box.check("systemctl stop wazuh-manager")
    assert machine.prop(flavor.unit, "ActiveState") == "inactive"
    machine.box.check("systemctl start wazuh-manager")
    wait_for(lambda: machine.running(flavor.unit), 20, "the collector started with the manager")


def test_stop_exits_0(machine: Machine, flavor: Flavor) -> None:
    """systemctl stop ends the daemon with exit 0: inactive, not failed."""
    machine.reset(flavor, fresh=False)
    machine.box.check(f"systemctl start {flavor.unit}")
    since = time.time()
    machine.box.check(f"systemctl stop {flavor.unit}")
    info = machine.show(flavor.unit, "ActiveState", "Result")
    assert info == {"ActiveState": "inactive", "Result": "success"}
    # systemd forgets a cleanly stopped unit's exit status at once; its journal keeps it:
    # "Deactivated successfully" is written only for an exit 0 (or SIGTERM, which we catch).
    journal = machine.journal(flavor.unit, since)
    assert "Deactivated successfully" in journal
    assert "Main process exited" not in journal
    assert "stopped" in journal


def test_config_error_reaches_the_journal_at_err_and_does_not_restart(
    machine: Machine, flavor: Flavor
) -> None:
    """An invalid config fails the start with exit 2; its FILE:LINE line is in
    journalctl -p err, and systemd does not restart it (RestartPreventExitStatus=2)."""
    machine.reset(flavor, fresh=False)
    text = wodle_config(flavor, ["app"]).replace("<interval>1h", "<interval>often")
    line = text[: text.index("often")].count("\n") + 1
    machine.write(flavor.config, text, mode="0660")
    since = time.time()
    assert machine.box.sh(f"systemctl start {flavor.unit}").returncode != 0
    time.sleep(1.0)
    info = machine.show(flavor.unit, "ActiveState", "SubState", "ExecMainStatus", "NRestarts")
    assert info == {
        "ActiveState": "failed", "SubState": "failed", "ExecMainStatus": "2", "NRestarts": "0",
    }  # fmt: skip
    errors = machine.journal(flavor.unit, since, "err")
    assert f"{flavor.config}:{line}: " in errors, errors


def test_import_state_as_root_leaves_files_the_service_opens(
    machine: Machine, flavor: Flavor
) -> None:
    """import-state run as root (before the first start) leaves the state files to wazuh;
    the service then starts and resumes right after the old module's last event."""
    machine.reset(flavor, ["imported"], fresh=True)
    group = flavor.group("imported")
    start, end = machine.seed_start, machine.seed_start + IMPORTED_END
    machine.box.check(
        "python3 -c \"import sqlite3; db = sqlite3.connect('/root/aws_services.db'); "
        "db.execute('DROP TABLE IF EXISTS cloudwatch_logs'); "
        "db.execute('CREATE TABLE cloudwatch_logs (aws_region TEXT, aws_log_group TEXT, "
        "aws_log_stream TEXT, next_token TEXT, start_time INTEGER, end_time INTEGER)'); "
        f"db.execute('INSERT INTO cloudwatch_logs VALUES (?, ?, ?, ?, ?, ?)', "
        f"('us-east-1', '{group}', 's', 'f/123', {start}, {end})); db.commit()\""
    )
    out = machine.box.check(
        f"aws-wodle import-state /root/aws_services.db --state {flavor.state} --account {ACCOUNT}"
    )
    assert "imported 1 stream" in out
    owners = machine.box.check(f"stat -c '%U' {flavor.state} {flavor.state}.lock").split()
    assert owners == ["wazuh", "wazuh"]
    machine.box.check(f"systemctl start {flavor.unit}")
    expected = messages(flavor, "imported")[IMPORTED_END + 1 :]
    wait_for(lambda: sorted(machine.received()) == expected, 30, "the events after end_time")
    assert machine.running(flavor.unit)


# Upgrade and removal (last: they change the package) ------------------------------------


def newer(deb: Path, folder: Path) -> Path:
    """The same package with a higher version, as the next release would be."""
    tree = folder / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    version = next(ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("Version:"))
    control.write_text(text.replace(f"Version: {version}", f"Version: {version}+next1"))
    target = folder / deb.name.replace(f"_{version}_", f"_{version}+next1_")
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(target)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def test_upgrade_restarts_running_units_and_keeps_their_state(
    machine: Machine, tmp_path: Path
) -> None:
    """apt upgrading the package stops the running collector, rebuilds the virtualenv and
    starts it again, still enabled, with its positions: nothing is sent twice."""
    flavor = FLAVORS[0]
    machine.reset(flavor, fresh=True)
    machine.box.check(f"systemctl enable -q --now {flavor.unit}")
    wait_for(lambda: len(machine.received()) == SEEDS["app"], 30, "the first cycle")
    pid = machine.main_pid(flavor.unit)
    result = machine.install(newer(machine.deb, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "+next1" in machine.box.check("dpkg-query -W -f='${Version}' aws-wodle")
    assert machine.running(flavor.unit)
    assert machine.main_pid(flavor.unit) != pid
    assert machine.box.sh(f"systemctl is-enabled {flavor.unit}").stdout.strip() == "enabled"
    wait_for(lambda: "0 events" in machine.prop(flavor.unit, "StatusText"), 30, "a cycle")
    assert len(machine.received()) == SEEDS["app"]


def test_remove_and_purge_leave_nothing_behind(machine: Machine) -> None:
    """apt remove stops every unit and takes away the virtualenv, the command, the units
    and the enable links, keeping the positions; purge takes the positions too."""
    box = machine.box
    machine.reset(FLAVORS[0], fresh=False)
    box.check(f"systemctl enable -q --now {UNITS}")
    box.check("apt-get remove -y aws-wodle")
    for flavor in FLAVORS:
        assert machine.prop(flavor.unit, "ActiveState") in ("inactive", "failed")
    gone = (
        "/opt/aws-wodle", "/usr/bin/aws-wodle", "/lib/systemd/system/aws-wodle.service",
        "/lib/systemd/system/aws-wodle@.service",
        "/etc/systemd/system/wazuh-manager.service.wants/aws-wodle.service",
        "/etc/systemd/system/wazuh-manager.service.wants/aws-wodle@prod.service",
    )  # fmt: skip
    for path in gone:
        assert box.sh(f"test -e {path} || test -L {path}").returncode != 0, path
    box.check("test -f /var/ossec/var/aws-wodle/state.db")
    box.check("apt-get purge -y aws-wodle")
    assert box.sh("test -e /var/ossec/var/aws-wodle").returncode != 0
    assert not machine.installed()
