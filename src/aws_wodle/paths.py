"""Where things are under the manager's home, for every command."""

from __future__ import annotations

from pathlib import Path

DEFAULT_HOME = "/var/ossec"
# The state lives beside the manager's own databases, writable by the manager's user only.
STATE_RELATIVE = "var/aws-wodle/state.db"
CONFIG_RELATIVE = "etc/ossec.conf"
# aws-wodle's own settings, beside the manager's configuration (which cannot hold them):
# <home>/etc/aws-wodle.toml.
SETTINGS_NAME = "aws-wodle.toml"
QUEUE_RELATIVE = "queue/sockets/queue"


def state_path(home: str) -> str:
    return str(Path(home) / STATE_RELATIVE)


def config_path(home: str) -> str:
    return str(Path(home) / CONFIG_RELATIVE)


def settings_path(config: str) -> str:
    """The settings file beside the ossec.conf in use (``<home>/etc/aws-wodle.toml``)."""
    return str(Path(config).with_name(SETTINGS_NAME))


def queue_path(home: str) -> str:
    return str(Path(home) / QUEUE_RELATIVE)
