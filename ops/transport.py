"""Run commands and move files on a host: over SSH (paramiko) or on this very machine.

Every remote command is an argv list joined with shlex, so no spec field reaches a shell
unquoted; host keys are checked against the lab's own known_hosts and only trusted when the
operator confirmed the fingerprint.
"""

from __future__ import annotations

import base64
import codecs
import errno
import getpass
import hashlib
import os
import re
import select
import shlex
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import paramiko

if TYPE_CHECKING:
    from llmops.ops.kinds.host import HostSpec

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TransportError(Exception):
    """Reaching or using a host failed; the message is written for the operator."""


class HostUnreachable(TransportError):
    """The host could not be connected to or logged into (or the connection was lost)."""


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
        super().__init__(f"`{shlex.join(self.argv)[:200]}` exited with {returncode}: {tail}")


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

    def __init__(self, spec: HostSpec) -> None:
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
        raise CommandTimeout(f"`{shlex.join(argv)[:200]}` on {self.host} timed out after "
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


def fingerprint_of(key: paramiko.PKey) -> str:
    """The SHA256 fingerprint exactly as OpenSSH prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_fingerprint(address: str, port: int = 22, timeout: float = 10.0) -> tuple[str, str]:
    """(key type, fingerprint) of a host without logging in, for the operator to confirm."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise HostUnreachable(f"{address}:{port}: {describe_os_error(exc, timeout)}") from exc
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return key.get_name(), fingerprint_of(key)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise HostUnreachable(f"{address}:{port}: no SSH handshake: {exc}") from exc
    finally:
        transport.close()


def describe_os_error(exc: BaseException, timeout: float) -> str:
    """A short operator reason for a failed TCP connect."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        exc = next(iter(exc.errors.values()))
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the address ({exc.strerror})"
    reasons = {errno.ECONNREFUSED: "connection refused (is sshd running on that port?)",
               errno.EHOSTUNREACH: "no route to host", errno.ENETUNREACH: "network unreachable"}
    code = getattr(exc, "errno", None)
    return reasons.get(code, str(exc)) if code is not None else str(exc)


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


_KNOWN_HOSTS_LOCK = threading.Lock()


def _normalized(fingerprint: str | None) -> str | None:
    return "SHA256:" + fingerprint.removeprefix("SHA256:").rstrip("=") if fingerprint else None


class _LabKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown key: add it only if it matches the fingerprint the operator confirmed."""

    def __init__(self, transport: SSHTransport, trusted: str | None) -> None:
        self.transport, self.trusted = transport, _normalized(trusted)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        t, fingerprint = self.transport, fingerprint_of(key)
        if fingerprint == self.trusted:
            client.get_host_keys().add(hostname, key.get_name(), key)
            with _KNOWN_HOSTS_LOCK:
                keys = paramiko.HostKeys()
                if t.known_hosts.exists():
                    keys.load(str(t.known_hosts))
                keys.add(hostname, key.get_name(), key)
                tmp = t.known_hosts.with_name(f".{t.known_hosts.name}.{os.getpid()}.tmp")
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                keys.save(str(tmp))
                os.replace(tmp, t.known_hosts)
            return
        message = ""
        if self.trusted:
            message = (f"host key of {t.host} ({t.address}:{t.port}) is {key.get_name()} "
                       f"{fingerprint}, not the {self.trusted} given with --trust: refusing. "
                       f"Check the key on the host itself (ssh-keygen -lf its host key)")
        raise HostKeyError(t.host, t.address, t.port, key.get_name(), fingerprint,
                           message=message)


class SSHTransport(Transport):
    """One keep-alive paramiko connection to a host, reconnected once if it died."""

    def __init__(self, spec: HostSpec, known_hosts: Path, *, trust: str | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.spec, self.host, self.python, self.workdir = spec, spec.name, spec.python, spec.workdir
        self.address, self.port = spec.address or "", spec.port
        self.user = spec.user or getpass.getuser()
        self.known_hosts, self.trust, self.connect_timeout = known_hosts, trust, connect_timeout
        self._lock, self._sftp_lock = threading.RLock(), threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def __repr__(self) -> str:
        return f"SSHTransport({self.host} {self.user}@{self.address}:{self.port})"

    def connect(self) -> paramiko.Transport:
        """The live connection, made (or remade) now if needed."""
        with self._lock:
            live = self._client.get_transport() if self._client else None
            if live is not None and live.is_active():
                return live
            self.close()
            self._client = self._login()
            live = self._client.get_transport()
            assert live is not None
            live.set_keepalive(15)
            return live

    def _login(self) -> paramiko.SSHClient:
        where, timeout = f"{self.host} ({self.address}:{self.port})", self.connect_timeout
        if not self.known_hosts.exists():
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.known_hosts, os.O_WRONLY | os.O_CREAT, 0o600))
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_LabKeyPolicy(self, self.trust))
        key = os.path.expanduser(self.spec.key) if self.spec.key else None
        began = time.monotonic()
        try:
            client.connect(self.address, self.port, username=self.user, key_filename=key,
                           allow_agent=key is None, look_for_keys=key is None, timeout=timeout,
                           banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout)
            return client
        except BaseException as exc:
            client.close()
            if isinstance(exc, paramiko.BadHostKeyException):
                raise self._changed_key(exc) from exc
            if isinstance(exc, paramiko.AuthenticationException):
                how = f"key {self.spec.key}" if key else "ssh-agent or ~/.ssh keys"
                reason = f"authentication failed for user {self.user} with {how}: {exc}"
            elif isinstance(exc, paramiko.SSHException | EOFError):
                reason = f"SSH handshake failed ({exc or 'connection closed'})"
                if time.monotonic() - began >= timeout * 0.9 or "banner" in str(exc):
                    reason = f"timed out after {timeout:g}s in the SSH handshake (sshd stuck?)"
            elif isinstance(exc, OSError):
                reason = describe_os_error(exc, timeout)
            else:
                raise
            raise HostUnreachable(f"cannot reach {where}: {reason}") from exc

    def _changed_key(self, exc: paramiko.BadHostKeyException) -> HostKeyError:
        new, old, port = exc.key, exc.expected_key, self.port
        entry = self.address if port == 22 else f"[{self.address}]:{port}"
        fp = fingerprint_of(new)
        return HostKeyError(self.host, self.address, port, new.get_name(), fp, changed=True,
                            message=(
            f"HOST KEY CHANGED for {self.host} ({self.address}:{port})! {self.known_hosts} has "
            f"{old.get_name()} {fingerprint_of(old)}, the host now shows {new.get_name()} {fp}. "
            "Someone may be intercepting the connection, or the host was reinstalled; llmops will "
            "not connect and never trusts a changed key by itself. If the change is expected, "
            f"remove the old entry with `ssh-keygen -R {shlex.quote(entry)} -f "
            f"{shlex.quote(str(self.known_hosts))}`, then connect again with --trust {fp}"))

    def _channel(self) -> paramiko.Channel:
        """A new session channel, reconnecting once if the pooled connection had died."""
        for attempt in (1, 2):
            live = self.connect()
            try:
                return live.open_session(timeout=self.connect_timeout)
            except paramiko.ChannelException as exc:
                raise TransportError(f"{self.host} refused a new session ({exc}); too many "
                                     "at once for its sshd MaxSessions?") from exc
            except (paramiko.SSHException, EOFError, OSError) as exc:
                live.close()
                if attempt == 2:
                    raise HostUnreachable(f"lost the connection to {self.host}: {exc}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def command(argv: Sequence[str], env: Mapping[str, str] | None = None,
                cwd: str | None = None) -> str:
        """The shell line for argv: every word quoted; a leading ~/ in argv[0] or cwd is $HOME."""
        def word(text: str) -> str:
            if text == "~" or text.startswith("~/"):
                return '"$HOME"' + (shlex.quote(text[1:]) if len(text) > 1 else "")
            return shlex.quote(text)

        if not argv:
            raise ValueError("empty argv")
        words = [word(argv[0]), *map(shlex.quote, argv[1:])]
        if env:
            words = ["env", *(shlex.quote(f"{k}={v}") for k, v in check_env(env).items()), *words]
        line = " ".join(words)
        return f"cd {word(cwd)} && exec {line}" if cwd else line

    def _exchange(self, argv: Sequence[str], chan: paramiko.Channel, timeout: float,
                  data: bytes, out: Callable[[bytes], None], err: Callable[[bytes], None]) -> int:
        deadline, pending, exited_at = time.monotonic() + timeout, memoryview(data), 0.0
        if not pending:
            chan.shutdown_write()
        while True:
            busy = False
            while chan.recv_ready():
                out(chan.recv(65536))
                busy = True
            while chan.recv_stderr_ready():
                err(chan.recv_stderr(65536))
                busy = True
            if pending and chan.exit_status_ready():
                pending = memoryview(b"")  # it ended without reading all its input
            if pending and chan.send_ready():
                pending, busy = pending[chan.send(pending[:32768]):], True
                if not pending:
                    chan.shutdown_write()
            if chan.exit_status_ready() and not busy:
                # exit-status may come before the last output: wait for EOF too, but not for
                # long, in case something the command left behind holds its output open
                exited_at = exited_at or time.monotonic()
                ended = chan.eof_received or chan.closed or time.monotonic() - exited_at > 2
                if ended and not (chan.recv_ready() or chan.recv_stderr_ready()):
                    code = chan.recv_exit_status()
                    live = chan.get_transport()
                    if code == -1 and not (live and live.is_active()):
                        raise HostUnreachable(f"lost the connection to {self.host} while "
                                              f"running `{shlex.join(argv)[:200]}`")
                    return code  # -1 also when a signal killed it (paramiko drops exit-signal)
            if (remaining := deadline - time.monotonic()) <= 0:
                raise CommandTimeout(f"`{shlex.join(argv)[:200]}` on {self.host} timed out "
                                     f"after {timeout:g}s; its channel was closed")
            if not busy:
                select.select([chan], [], [], min(remaining, 0.2))

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, input: str | None = None,  # noqa: A002
            env: Mapping[str, str] | None = None, cwd: str | None = None) -> Completed:
        argv, started, line = list(argv), time.monotonic(), self.command(argv, env, cwd)
        out, err = bytearray(), bytearray()
        with self._channel() as chan:
            chan.exec_command(line)
            code = self._exchange(argv, chan, timeout, (input or "").encode(), out.extend,
                                  err.extend)
        return Completed(argv, code, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - started)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *,
               timeout: float = 600.0, env: Mapping[str, str] | None = None,
               cwd: str | None = None) -> int:
        lines = LineSplitter(on_line)
        with self._channel() as chan:
            chan.set_combine_stderr(True)
            chan.exec_command(self.command(argv, env, cwd))
            code = self._exchange(argv, chan, timeout, b"", lines.feed, lines.feed)
        lines.feed(b"", final=True)
        return code

    def _sftp_call(self, what: str, path: str, action: Callable[[paramiko.SFTPClient, str], object]
                   ) -> object:
        """Run one SFTP action with ~ expanded, reopening SFTP once on a fresh connection."""
        with self._sftp_lock:
            for attempt in (1, 2):
                try:
                    live = self.connect()
                    if self._sftp is None or self._sftp.get_channel().get_transport() is not live:
                        self._sftp = paramiko.SFTPClient.from_transport(live)
                    sftp = self._sftp
                    assert sftp is not None
                    if path == "~" or path.startswith("~/"):
                        path = sftp.normalize(".") + path[1:]
                    return action(sftp, path)
                except OSError as exc:
                    if isinstance(exc, FileNotFoundError | PermissionError) or attempt == 2:
                        raise TransportError(f"{what} {path} on {self.host}: {exc}") from exc
                    self._sftp = None
                except (paramiko.SSHException, EOFError) as exc:
                    self._sftp = None
                    if attempt == 2:
                        raise HostUnreachable(f"{what} {path} on {self.host}: {exc}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _atomic(sftp: paramiko.SFTPClient, path: str, mode: int,
                fill: Callable[[paramiko.SFTPFile], object]) -> None:
        parent, _, name = path.rpartition("/")
        todo = []
        while parent and not _sftp_exists(sftp, parent):
            todo.append(parent)
            parent = parent.rpartition("/")[0]
        for folder in reversed(todo):
            sftp.mkdir(folder, 0o700)
        tmp = f"{path.rpartition('/')[0] or '.'}/.{name}.{os.getpid()}.tmp"
        with sftp.open(tmp, "wb") as fh:
            fh.chmod(mode)
            fill(fh)
        sftp.posix_rename(tmp, path)

    def put(self, local_path: Path, remote_path: str, mode: int = 0o600) -> None:
        def fill(fh: paramiko.SFTPFile) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
        self._sftp_call("put", remote_path, lambda s, p: self._atomic(s, p, mode, fill))

    def get(self, remote_path: str, local_path: Path) -> None:
        local_path.parent.mkdir(parents=True, exist_ok=True)
        self._sftp_call("get", remote_path, lambda s, p: s.get(p, str(local_path)))

    def read_text(self, remote_path: str) -> str:
        def read(sftp: paramiko.SFTPClient, path: str) -> str:
            with sftp.open(path, "rb") as fh:
                return fh.read().decode()
        return str(self._sftp_call("read", remote_path, read))

    def write_text(self, remote_path: str, text: str, mode: int = 0o600) -> None:
        data = text.encode()
        self._sftp_call("write", remote_path,
                        lambda s, p: self._atomic(s, p, mode, lambda fh: fh.write(data)))

    def open_forward(self, remote_port: int, remote_host: str = "127.0.0.1") -> Forward:
        """Each local connection becomes a direct-tcpip channel on the pooled connection."""
        def opener(peer: tuple[str, int]) -> paramiko.Channel:
            return self.connect().open_channel("direct-tcpip", (remote_host, remote_port), peer,
                                               timeout=self.connect_timeout)
        self.connect()
        return Forward(opener, f"{self.host}->{remote_host}:{remote_port}")

    def close(self) -> None:
        with self._lock:
            client, self._client, self._sftp = self._client, None, None
            if client is not None:
                client.close()


def _sftp_exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
        return True
    except FileNotFoundError:
        return False


class HostPool:
    """One pooled, keep-alive connection per host; thread-safe (the TUI calls from workers)."""

    def __init__(self, lookup: Callable[[str], HostSpec | None], known_hosts: Path, *,
                 trust: Mapping[str, str] | None = None, connect_timeout: float = 10.0,
                 facts: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self.lookup, self.known_hosts, self.connect_timeout = lookup, known_hosts, connect_timeout
        self._trust, self._lock = dict(trust or {}), threading.Lock()
        self._transports: dict[str, Transport] = {}
        self._facts = facts

    def facts(self, host: str) -> dict[str, Any] | None:
        """The host's last recorded probe (the lab's), for checks that compare against it."""
        return self._facts(host) if self._facts else None

    def trust(self, host: str, fingerprint: str) -> None:
        """Accept this fingerprint for host's next first connection (after the operator said so)."""
        with self._lock:
            self._trust[host] = fingerprint
            old = self._transports.pop(host, None)
        if old is not None:
            old.close()

    def check_host_key(self, spec: HostSpec) -> None:
        """Log in to a host that may not be in the lab yet: its key must be known or trusted.

        Raises HostKeyError (unknown, wrong --trust, changed) or HostUnreachable; a trusted
        key is written to known_hosts.
        """
        if spec.local:
            return
        with self._lock:
            trusted = self._trust.get(spec.name)
        probe = SSHTransport(spec, self.known_hosts, trust=trusted,
                             connect_timeout=self.connect_timeout)
        try:
            probe.connect()
        finally:
            probe.close()

    def transport(self, host: str) -> Transport:
        """The host's transport; remade if its spec changed since it was cached."""
        spec = self.lookup(host)
        if spec is None:
            raise TransportError(f"no host named {host!r} in the lab (llmops host add)")
        with self._lock:
            cached = self._transports.get(host)
            if cached is not None and getattr(cached, "spec", None) == spec:
                return cached
            if cached is not None:
                cached.close()
            fresh: Transport = LocalTransport(spec) if spec.local else SSHTransport(
                spec, self.known_hosts, trust=self._trust.get(host),
                connect_timeout=self.connect_timeout)
            self._transports[host] = fresh
            return fresh

    def drop(self, host: str) -> None:
        with self._lock:
            old = self._transports.pop(host, None)
        if old is not None:
            old.close()

    def close(self) -> None:
        with self._lock:
            olds, self._transports = list(self._transports.values()), {}
        for old in olds:
            old.close()
