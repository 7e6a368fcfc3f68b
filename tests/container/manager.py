"""Stand-in for the Wazuh manager in the test container: binds the analysis queue socket
and appends each datagram it receives, as one JSON string a line, to a record file.

Usage: python3 manager.py QUEUE_SOCKET RECORD_FILE (run by wazuh-manager.service as wazuh).
It tells systemd it is ready once the socket is bound, and removes the socket on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from types import FrameType


def notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.send(message.encode())


def main() -> int:
    path, record = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(path)
    os.chmod(path, 0o660)  # as the manager leaves it: its user and group only

    def stop(_sig: int, _frame: FrameType | None) -> None:
        os.unlink(path)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    notify("READY=1")
    with open(record, "a", encoding="utf-8") as out:
        while True:
            data = sock.recv(65536)
            out.write(json.dumps(data.decode("utf-8", "replace")) + "\n")
            out.flush()


if __name__ == "__main__":
    sys.exit(main())
