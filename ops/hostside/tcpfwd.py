"""The stable "live" endpoint of a blue-green server: a tiny TCP forwarder on the host.

Run as `python tcpfwd.py LISTEN_HOST PORT TARGET_FILE`. Each new connection reads
TARGET_FILE (one port number) and is piped to 127.0.0.1:<that port>, so switching colours
is one atomic file write (write + rename) and open streams finish on the old colour.
Stdlib only: it runs under whatever python the host has.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path


def read_target(target_file: Path) -> int | None:
    """The port to forward to now; None while no colour is live yet."""
    try:
        return int(target_file.read_text().strip())
    except (OSError, ValueError):
        return None


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction until EOF, then half-close so the other side sees it."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client: socket.socket, target_file: Path) -> None:
    port = read_target(target_file)
    if port is None:
        client.close()
        return
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    back.start()
    pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def serve(listen_host: str, port: int, target_file: Path) -> None:
    family = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((listen_host, port))
    server.listen(128)
    print(f"tcpfwd listening on {listen_host}:{port}, target from {target_file}", flush=True)
    while True:
        client, _addr = server.accept()
        threading.Thread(target=handle, args=(client, target_file), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
