"""Run commands and move files on a host: over SSH (paramiko) or on this very machine.

Every remote command is an argv list joined with shlex, so no spec field reaches a shell
unquoted; host keys are checked against the lab's own known_hosts and only trusted when the
operator confirmed the fingerprint (see ssh.py; port forwards are in forward.py).

ssh.py builds on the base pieces here and hostpool.py on both; this module imports neither,
nor the host kind (a host is anything shaped like `HostAddress`): ops has no import loop.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from llmops.ops.forward import Forward, open_local_socket


class HostAddress(Protocol):
    """What a transport needs of a host: the host kind's spec has these fields."""

    @property
    def name(self) -> str: ...
    @property
    def local(self) -> bool: ...
    @property
    def address(self) -> str | None: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def python(self) -> str: ...
    @property
    def workdir(self) -> str: ...


ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLOW_START_S = 2.0
"""A trivial command taking longer than this to come back is slow enough to tell the operator:
over SSH it is the login shell's startup (~/.bashrc: conda, pyenv, nvm init) that every command
pays."""
SHELL_STARTUP = "(~/.bashrc, ~/.profile: conda, pyenv or nvm init, a network mount)"
"""What a login shell runs before every SSH command, as the operator's messages name it."""


class TransportError(Exception):
    """Reaching or using a host failed; the message is written for the operator."""


class HostUnreachable(TransportError):
    """The host could not be connected to or logged into (or the connection was lost).
    `field`: the host spec's field to look at (address, port, user, key) when it is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NoFileTransfer(TransportError):
    """The host's sshd offers no SFTP subsystem, which llmops moves files with."""


class CommandTimeout(TransportError):
    """A command ran past its timeout; its channel or process was closed."""


class HostKeyError(TransportError):
    """The host's key is unknown or changed: never connect without the operator's word."""

    def __init__(self, host: str, address: str, port: int, key_type: str, fingerprint: str,
                 *, changed: bool = False, message: str = "") -> None:
        self.host, self.address, self.port = host, address, port
        self.key_type, self.fingerprint, self.changed = key_type, fingerprint, changed
        super().__init__(message or (
            f"host key of {host} ({address}:{port}) is not known: {key_type} {fingerprint}. "
            f"Check it and add --trust {fingerprint}"))


class CommandFailed(TransportError):
    """A command exited non-zero; carries everything needed to explain why."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv, self.returncode = list(argv), returncode
        self.stdout, self.stderr = stdout, stderr
        tail = " | ".join((stderr or stdout).strip().splitlines()[-5:])
        super().__init__(f"`{shown_command(self.argv)}` exited with {returncode}: {tail}")


def shown_command(argv: Sequence[str]) -> str:
    """A command as an error names it: a host-side script's source (`python -c SOURCE`) is
    named `<script>`, never quoted, and the line is cut at 200 characters."""
    shown = ["<script>" if i and argv[i - 1] == "-c" else a for i, a in enumerate(argv)]
    return shlex.join(shown)[:200]


@dataclass
class Completed:
    """The outcome of one command."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> Completed:
        """Raise CommandFailed unless the command succeeded, so callers can chain."""
        if self.returncode != 0:
            raise CommandFailed(self.argv, self.returncode, self.stdout, self.stderr)
        return self


class LineSplitter:
    """Turn byte chunks into whole decoded lines for stream callbacks."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line, self.buffer = on_line, ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes, final: bool = False) -> None:
        self.buffer += self.decoder.decode(data, final)
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            self.on_line(line.rstrip("\r"))
        if final and self.buffer:
            self.on_line(self.buffer.rstrip("\r"))
            self.buffer = ""


def check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Refuse env names a shell or `env` would misread."""
    for key in env or {}:
        if not ENV_KEY.match(key):
            raise ValueError(f"bad environment variable name {key!r}: use letters, digits, _")
    return dict(env or {})


class Transport(ABC):
    """What the engine and the kinds need from a host, wherever it is."""

    host: str
    python: str
    workdir: str
    start_seconds: float | None = None
    """What a trivial command cost here when last measured (`measure_start`), or None."""
    _start_measured_at = 0.0

    def ready(self) -> None:  # noqa: B027 - a hook: most transports have nothing to open
        """Make whatever connection commands need now, so a measurement leaves it out."""

    def measure_start(self, *, timeout: float = 60.0, max_age: float = 0.0) -> float:
        """Seconds for `true` to run here and come back: what every command pays before it does
        anything (over SSH: a session channel and the login shell's startup). A measurement
        younger than `max_age` seconds is reused (a probe and its checklist's probe)."""
        if self.start_seconds is not None and \
                time.monotonic() - self._start_measured_at < max_age:
            return self.start_seconds
        self.ready()
        return self.noted_start(self.run(["true"], timeout=timeout).check().seconds)

    def noted_start(self, seconds: float) -> float:
        """Remember a command start's cost (a timeout's message cites it); returns it."""
        self.start_seconds, self._start_measured_at = seconds, time.monotonic()
        return seconds

    @abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float = 60.0, input: str | None = None,  # noqa: A002
            env: Mapping[str, str] | None = None, cwd: str | None = None) -> Completed: ...

    @abstractmethod
    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *,
               timeout: float = 600.0, env: Mapping[str, str] | None = None,
               cwd: str | None = None) -> int: ...

    def python_script(self, source: str, args: Sequence[str], *, timeout: float = 60.0,
                      input: str | None = None) -> Completed:  # noqa: A002
        """Run stdlib-only Python on the host without copying a file there first."""
        return self.run([self.python, "-c", source, *args], timeout=timeout, input=input)

    @abstractmethod
    def put(self, local_path: Path, remote_path: str, mode: int = 0o600) -> None: ...

    @abstractmethod
    def get(self, remote_path: str, local_path: Path) -> None: ...

    @abstractmethod
    def read_text(self, remote_path: str) -> str: ...

    @abstractmethod
    def write_text(self, remote_path: str, text: str, mode: int = 0o600) -> None: ...

    @abstractmethod
    def open_forward(self, remote_port: int, remote_host: str = "127.0.0.1") -> Forward: ...

    def forward(self, remote_port: int,
                remote_host: str = "127.0.0.1") -> AbstractContextManager[int]:
        """A local port reaching remote_host:remote_port as the host sees it, for a `with`."""
        return self.open_forward(remote_port, remote_host)

    @abstractmethod
    def close(self) -> None:
        """Release connections; the object may reconnect if used again."""


class LocalTransport(Transport):
    """The console's own machine: subprocess without a shell."""

    def __init__(self, spec: HostAddress) -> None:
        self.spec, self.host, self.workdir = spec, spec.name, spec.workdir
        self.python = os.path.expanduser(spec.python)

    def _popen(self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None,
               **kwargs: object) -> subprocess.Popen[bytes]:
        argv = [os.path.expanduser(argv[0]), *argv[1:]]
        return subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv, env={**os.environ, **check_env(env)}, start_new_session=True,
            cwd=os.path.expanduser(cwd) if cwd else None, **kwargs)  # type: ignore[call-overload]

    def _kill(self, proc: subprocess.Popen[bytes], argv: Sequence[str], timeout: float
              ) -> NoReturn:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise CommandTimeout(f"`{shown_command(argv)}` on {self.host} timed out after "
                             f"{timeout:g}s and was killed")

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, input: str | None = None,  # noqa: A002
            env: Mapping[str, str] | None = None, cwd: str | None = None) -> Completed:
        argv, started = list(argv), time.monotonic()
        try:
            proc = self._popen(argv, env, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL if input is None else subprocess.PIPE)
        except OSError as exc:
            return Completed(argv, 127, "", f"{argv[0]}: {exc.strerror}\n",
                             time.monotonic() - started)
        try:
            out, err = proc.communicate(None if input is None else input.encode(), timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc, argv, timeout)
        return Completed(argv, proc.returncode, out.decode(errors="replace"),
                         err.decode(errors="replace"), time.monotonic() - started)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *,
               timeout: float = 600.0, env: Mapping[str, str] | None = None,
               cwd: str | None = None) -> int:
        deadline, lines = time.monotonic() + timeout, LineSplitter(on_line)
        try:
            proc = self._popen(argv, env, cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:
            on_line(f"{argv[0]}: {exc.strerror}")
            return 127
        assert proc.stdout is not None
        with proc.stdout:
            fd = proc.stdout.fileno()
            while (remaining := deadline - time.monotonic()) > 0:
                if select.select([fd], [], [], min(remaining, 0.2))[0]:
                    if not (data := os.read(fd, 65536)):
                        break
                    lines.feed(data)
                elif proc.poll() is not None:
                    break  # exited; a detached grandchild may still hold the pipe
            else:
                self._kill(proc, argv, timeout)
        lines.feed(b"", final=True)
        return proc.wait()

    @contextmanager
    def _file(self, what: str, path: str, mode: int | None = None) -> Iterator[Path]:
        """Errors as TransportError (as over SSH); with a mode, an atomic write of the path."""
        target = Path(os.path.expanduser(path))
        try:
            if mode is None:
                yield target
                return
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            yield tmp
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            raise TransportError(f"{what} {path} on {self.host}: {exc}") from exc

    def put(self, local_path: Path, remote_path: str, mode: int = 0o600) -> None:
        with self._file("put", remote_path, mode) as tmp, open(tmp, "r+b") as fh, \
                open(local_path, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)

    def get(self, remote_path: str, local_path: Path) -> None:
        local_path.parent.mkdir(parents=True, exist_ok=True)
        with self._file("get", remote_path) as source:
            shutil.copyfile(source, local_path)

    def read_text(self, remote_path: str) -> str:
        with self._file("read", remote_path) as source:
            return source.read_text()

    def write_text(self, remote_path: str, text: str, mode: int = 0o600) -> None:
        with self._file("write", remote_path, mode) as tmp:
            tmp.write_text(text)

    def open_forward(self, remote_port: int, remote_host: str = "127.0.0.1") -> Forward:
        """No tunnel is needed here: loopback ports are used as they are."""
        if remote_host in ("127.0.0.1", "localhost", "::1"):
            return Forward.direct(remote_port)
        return Forward(lambda _peer: open_local_socket(remote_host, remote_port),
                       f"{self.host}->{remote_host}:{remote_port}")

    def close(self) -> None:
        """Nothing is held open for this machine."""
