"""Local listeners whose connections are relayed elsewhere: SSH direct-tcpip channels or sockets.

A leaf module (it imports nothing of llmops), so transport.py and ssh.py can both use it.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from typing import Any

import paramiko


class Forward(AbstractContextManager[int]):
    """A listener on 127.0.0.1 whose connections are relayed through `opener`; close() ends it."""

    def __init__(self, opener: Callable[[tuple[str, int]], Any] | None, label: str,
                 port: int = 0) -> None:
        self.label, self.local_port, self._server = label, port, None
        if opener is None:
            return  # a direct forward: the port is reachable as it is
        server = _RelayServer(("127.0.0.1", 0), _RelayHandler)
        server.opener, server.closing, server.open_ends = opener, threading.Event(), set()
        self._server, self.local_port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True, name=f"forward {label}").start()

    @classmethod
    def direct(cls, port: int) -> Forward:
        return cls(None, f"direct:{port}", port)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.closing.set()
            server.shutdown()
            server.server_close()
            for end in list(server.open_ends):
                end.close()

    def __enter__(self) -> int:
        return self.local_port

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    opener: Callable[[tuple[str, int]], Any]
    closing: threading.Event
    open_ends: set[Any]


class _RelayHandler(socketserver.BaseRequestHandler):
    """Copy bytes both ways, passing each side's EOF on, until both sides are done."""

    def handle(self) -> None:
        server: _RelayServer = self.server  # type: ignore[assignment]
        try:
            far = server.opener(self.client_address)
        except Exception:  # noqa: BLE001 - the client sees its connection close
            return
        server.open_ends.update((far, self.request))
        peers = {self.request: far, far: self.request}
        try:
            while peers and not server.closing.is_set():
                for src in select.select(list(peers), [], [], 0.5)[0]:
                    data = src.recv(65536)
                    if data:
                        peers[src].sendall(data)
                        continue
                    dst = peers.pop(src)
                    with suppress(OSError, EOFError):
                        dst.shutdown_write() if isinstance(dst, paramiko.Channel) \
                            else dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            far.close()
            server.open_ends.discard(far)
            server.open_ends.discard(self.request)


def open_local_socket(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    return sock
