"""A byte relay between two stream sockets, for a container without network.

Usage: python3 relay.py LISTEN TARGET, each ``tcp:HOST:PORT`` or ``unix:PATH``. Every
connection accepted on LISTEN gets its own connection to TARGET, bytes copied both ways.
The test runs it twice: in the container (its loopback to a Unix socket in a folder bound
from the host) and on the host (that Unix socket to the moto server's port).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading


def _address(spec: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    host, _, port = rest.rpartition(":")
    return socket.AF_INET, (host, int(port))


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _serve(client: socket.socket, target: str) -> None:
    family, address = _address(target)
    upstream = socket.socket(family, socket.SOCK_STREAM)
    try:
        upstream.connect(address)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main() -> int:
    listen, target = sys.argv[1], sys.argv[2]
    family, address = _address(listen)
    server = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        assert isinstance(address, str)
        if os.path.exists(address):
            os.unlink(address)
    else:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(address)
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
