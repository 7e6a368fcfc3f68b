"""Where things are under the manager's home, for every command."""

from __future__ import annotations

from pathlib import Path

DEFAULT_HOME = "/var/ossec"
# The state lives beside the manager's own databases, writable by the manager's user only.
STATE_RELATIVE = "var/aws-wodle/state.db"
CONFIG_RELATIVE = "etc/ossec.conf"
QUEUE_RELATIVE = "queue/sockets/queue"


def state_path(home: str) -> str:
    return str(Path(home) / STATE_RELATIVE)


def config_path(home: str) -> str:
    return str(Path(home) / CONFIG_RELATIVE)


def queue_path(home: str) -> str:
    return str(Path(home) / QUEUE_RELATIVE)
