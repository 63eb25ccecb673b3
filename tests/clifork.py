"""The real CLI for the tests, forked from a process that imported its libraries once.

`python -m llmops.console.cli` spends ~1.3 s (more on a loaded box) importing pydantic,
paramiko, sqlite-utils, httpx, GitPython and the kinds before it does anything; the suite
runs the CLI ~800 times. This module is a fork server (a "zygote"): it imports llmops.ops
and llmops.rollback (and their libraries) once, then forks one child per call. Each child
is a fresh process as a subprocess would be: its own argv, environment, cwd and stdio (the
caller's files, passed over a unix socket), it imports llmops.console itself (the zygote
drops those modules, so rich's consoles read the call's COLUMNS, NO_COLOR...), runs the same
`cli.main` the `llmops` script runs and exits through the interpreter's normal exit. The
caller gets a subprocess.CompletedProcess, or TimeoutExpired after killing the child.

Tests that need the CLI as a separate program (killed mid-action, started by path) still
use subprocess with labtools.LLMOPS.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

PROG = "python -m llmops.console.cli"
HEADER = struct.Struct("!I")


# --- the caller's side ------------------------------------------------------------------------


class Zygote:
    """One fork server per test process, started on first use, gone when the process is."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="llmops-clifork-"))
        self.path = str(self.dir / "socket")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clifork", self.path], cwd=Path(__file__).parent,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the CLI fork server did not start: {ready!r}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()  # EOF: the server exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for leftover in self.dir.iterdir():
            leftover.unlink()
        self.dir.rmdir()

    def run(self, argv: list[str], env: dict[str, str], timeout: float
            ) -> subprocess.CompletedProcess[str]:
        """Like subprocess.run([... cli, *argv], capture_output=True, text=True, env=env)."""
        shown = [PROG, *argv]
        with (tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err,
              open(os.devnull, "rb") as null,
              socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock):
            sock.connect(self.path)
            body = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()}).encode()
            socket.send_fds(sock, [HEADER.pack(len(body))], [null.fileno(), out.fileno(),
                                                             err.fileno()])
            sock.sendall(body)
            pid = int(line(sock))
            sock.settimeout(timeout)
            try:
                status = line(sock)
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                sock.settimeout(30)
                line(sock)
                raise subprocess.TimeoutExpired(shown, timeout, read(out), read(err)) from None
            return subprocess.CompletedProcess(shown, int(status), read(out), read(err))


def line(sock: socket.socket) -> str:
    """One reply line (the server writes each in one send; they are a few bytes)."""
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise RuntimeError("the CLI fork server went away mid-call")
        got += chunk
    return got.decode()


def read(file: Any) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


_zygote: Zygote | None = None
_lock = threading.Lock()


def run_cli(argv: list[str], env: dict[str, str], timeout: float
            ) -> subprocess.CompletedProcess[str]:
    global _zygote
    with _lock:
        if _zygote is None or not _zygote.alive():
            _zygote = Zygote()
            atexit.register(_zygote.close)
        zygote = _zygote
    return zygote.run(argv, env, timeout)


# --- the fork server --------------------------------------------------------------------------


def preload() -> None:
    """Import what the CLI's commands import (they load lazily: `load_all`), then forget
    llmops.console (each child imports it anew)."""
    import llmops.console.cli as cli

    cli.load_all()

    for name in [n for n in sys.modules if n == "llmops.console" or
                 n.startswith("llmops.console.")]:
        del sys.modules[name]


def serve(path: str) -> dict[str, Any] | None:
    """Fork a child per request; returns (in the child only) the request it must run."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                return None  # the test process closed our stdin: it is gone
            if key.data == "accept":
                conn, _ = listener.accept()
                header, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
                (size,) = HEADER.unpack(header)
                body = b""
                while len(body) < size:
                    body += conn.recv(size - len(body))
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    conn.close()
                    request: dict[str, Any] = json.loads(body)
                    request["fds"] = fds
                    return request
                for fd in fds:
                    os.close(fd)
                conn.sendall(f"{pid}\n".encode())
                pidfd = os.pidfd_open(pid)
                selector.register(pidfd, selectors.EVENT_READ, (pid, conn))
            else:
                pid, conn = key.data
                selector.unregister(key.fileobj)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                try:
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass  # the caller timed out and left
                conn.close()


def become(request: dict[str, Any]) -> None:
    """In the forked child: take the call's stdio, environment and cwd, then run the CLI."""
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # other calls' sockets and files
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]  # as `python -m` sets it (not this folder)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [PROG, *request["argv"]]
    from llmops.console.cli import cli

    cli.main(args=request["argv"], prog_name=PROG)


if __name__ == "__main__":
    preload()
    child = serve(sys.argv[1])
    if child is not None:
        become(child)  # raises SystemExit: the interpreter's normal exit, as the CLI's own
