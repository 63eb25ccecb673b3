"""A gateway's tunnel to a server that listens on loopback of another host: listens on this
machine's 127.0.0.1:<local port> only and carries each connection over one SSH connection
(paramiko, a direct-tcpip channel) to 127.0.0.1:<port> on the server's host.

Run by llmops as a detached process of the gateway (procctl `gateway.<name>.tunnel.<server>`)
on the machine that holds the lab's SSH key: the key never leaves it, the forwarded port is
on loopback only, and the server's host key must already be in the lab's known_hosts (no
trust on first use here). A dropped SSH connection is made again on the next connection.

    python gateway_tunnel.py LOCAL_PORT HOST SSH_PORT USER KEY|- KNOWN_HOSTS REMOTE_PORT
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import paramiko

CONNECT_TIMEOUT_S = 15.0


class Tunnel:
    """One SSH connection, made again when it died; a channel per accepted connection."""

    def __init__(self, host: str, port: int, user: str, key: str | None, known: str,
                 remote_port: int) -> None:
        self.host, self.port, self.user, self.key = host, port, user, key
        self.known, self.remote_port = known, remote_port
        self.client: paramiko.SSHClient | None = None
        self.lock = threading.Lock()

    def transport(self) -> paramiko.Transport:
        with self.lock:
            live = self.client.get_transport() if self.client else None
            if live is not None and live.is_active():
                return live
            client = paramiko.SSHClient()
            client.load_host_keys(self.known)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(self.host, self.port, username=self.user, key_filename=self.key,
                           allow_agent=self.key is None, look_for_keys=self.key is None,
                           timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S,
                           auth_timeout=CONNECT_TIMEOUT_S)
            live = client.get_transport()
            assert live is not None
            live.set_keepalive(15)
            self.client = client
            print(f"ssh connected to {self.user}@{self.host}:{self.port}", flush=True)
            return live

    def serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            chan = self.transport().open_channel(
                "direct-tcpip", ("127.0.0.1", self.remote_port), peer,
                timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a failed connection is logged, not fatal
            print(f"cannot open a channel: {type(exc).__name__}: {exc}", flush=True)
            conn.close()
            return
        threading.Thread(target=pump, args=(conn, chan), daemon=True).start()
        pump(chan, conn)


def pump(src: socket.socket | paramiko.Channel, dst: socket.socket | paramiko.Channel) -> None:
    """Copy src to dst until either side closes; then end both. A socket is shut down before
    it is closed: close() alone, while the other direction's thread waits in recv() on it,
    sends no FIN, so the client would keep a connection the server has already dropped (seen:
    LiteLLM reused it and got "Server disconnected" after vLLM closed an idle keep-alive)."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        for end in (src, dst):
            try:
                if isinstance(end, socket.socket):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            except OSError:
                pass


def main(argv: list[str]) -> int:
    local_port, host, ssh_port, user, key, known, remote_port = argv
    tunnel = Tunnel(host, int(ssh_port), user, None if key == "-" else key, known,
                    int(remote_port))
    while True:  # the first connection now, so a bad key or host key fails the start
        try:
            tunnel.transport()
            break
        except (paramiko.BadHostKeyException, paramiko.SSHException) as exc:
            if "not found in known_hosts" in str(exc) or isinstance(
                    exc, paramiko.BadHostKeyException | paramiko.AuthenticationException):
                print(f"refused: {type(exc).__name__}: {exc}", flush=True)
                return 2
            print(f"ssh: {exc}; again in 2s", flush=True)
        except OSError as exc:
            print(f"ssh: {exc}; again in 2s", flush=True)
        time.sleep(2)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(local_port)))  # loopback only: no other interface
    server.listen(64)
    print(f"listening on 127.0.0.1:{local_port} -> {host} 127.0.0.1:{remote_port}", flush=True)
    while True:
        conn, peer = server.accept()
        threading.Thread(target=tunnel.serve, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
