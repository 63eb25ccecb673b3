"""The SSH transport (paramiko) and its host-key policy: the lab's own known_hosts only.

Host keys are checked against the lab's known_hosts and an unknown key is only trusted (and
written there) when it matches the fingerprint the operator confirmed. The base pieces come from
transport.py, which in turn imports this module only lazily, so there is no import cycle.
"""

from __future__ import annotations

import getpass
import os
import select
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import paramiko

from llmops.ops.forward import Forward
from llmops.ops.hostkeys import describe_os_error, fingerprint_of
from llmops.ops.sshtimeout import timeout_error
from llmops.ops.transport import (
    CommandTimeout,
    Completed,
    HostAddress,
    HostKeyError,
    HostUnreachable,
    LineSplitter,
    NoFileTransfer,
    Transport,
    TransportError,
    check_env,
    shown_command,
)

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

    def __init__(self, spec: HostAddress, known_hosts: Path, *, trust: str | None = None,
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
            field = "port"
            if isinstance(exc, paramiko.AuthenticationException):
                how = f"key {self.spec.key}" if key else "ssh-agent or ~/.ssh keys"
                reason = f"authentication failed for user {self.user} with {how}: {exc}"
                field = "key" if key else "user"
            elif isinstance(exc, paramiko.SSHException | EOFError):
                reason = f"SSH handshake failed ({exc or 'connection closed'})"
                if time.monotonic() - began >= timeout * 0.9 or "banner" in str(exc):
                    reason = f"timed out after {timeout:g}s in the SSH handshake (sshd stuck?)"
            elif isinstance(exc, OSError):
                reason = describe_os_error(exc, timeout)
                field = "port" if "refused" in reason else "address"
            else:
                raise
            raise HostUnreachable(f"cannot reach {where}: {reason}", field) from exc

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
        """A new session channel, reconnecting once if the pooled connection had died. A
        connection that is still up is never closed here: other threads' commands run on it,
        and a slow channel open (a busy host: paramiko's timeout) must fail this command only,
        not cut theirs ("Channel closed" in each)."""
        for attempt in (1, 2):
            live = self.connect()
            try:
                return live.open_session(timeout=self.connect_timeout)
            except paramiko.ChannelException as exc:
                raise TransportError(f"{self.host} refused a new session ({exc}); too many "
                                     "at once for its sshd MaxSessions?") from exc
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if live.is_active():
                    if attempt == 2:
                        raise TransportError(
                            f"{self.host} did not open a session within "
                            f"{self.connect_timeout:g}s, twice ({exc}): the host is busy; "
                            "the connection and the commands on it are kept") from exc
                    continue
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

    def ready(self) -> None:
        """Connected now (a command start's measurement leaves the login out)."""
        self.connect()

    def timed_out(self, argv: Sequence[str], timeout: float, heard: bool) -> CommandTimeout:
        """One line that says what to check (ops/sshtimeout.py)."""
        key = ["-i", self.spec.key] if self.spec.key else []
        login = ["ssh", *key, "-p", str(self.port), f"{self.user}@{self.address}"]
        return timeout_error(argv, self.host, timeout, heard, login=login, user=self.user,
                             start_seconds=self.start_seconds)

    def _exchange(self, argv: Sequence[str], chan: paramiko.Channel, timeout: float,
                  data: bytes, out: Callable[[bytes], None], err: Callable[[bytes], None]) -> int:
        deadline, pending, exited_at = time.monotonic() + timeout, memoryview(data), 0.0
        heard = False  # any output at all: the command got past the shell's startup
        if not pending:
            chan.shutdown_write()
        while True:
            busy = False
            while chan.recv_ready():
                out(chan.recv(65536))
                busy = heard = True
            while chan.recv_stderr_ready():
                err(chan.recv_stderr(65536))
                busy = heard = True
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
                                              f"running `{shown_command(argv)}`")
                    return code  # -1 also when a signal killed it (paramiko drops exit-signal)
            if (remaining := deadline - time.monotonic()) <= 0:
                raise self.timed_out(argv, timeout, heard)
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
                        self._sftp = self._open_sftp(live)
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

    def _open_sftp(self, live: paramiko.Transport) -> paramiko.SFTPClient:
        """SFTP on the live connection; a refusal on a connection that stays up means sshd has
        no SFTP subsystem (paramiko says only "Channel closed")."""
        try:
            sftp = paramiko.SFTPClient.from_transport(live)
        except (paramiko.SSHException, EOFError):
            if not live.is_active():
                raise
            sftp = None
        if sftp is None:
            raise NoFileTransfer(
                f"the sshd of {self.host} ({self.address}:{self.port}) offers no SFTP, which"
                " llmops moves files with: add `Subsystem sftp internal-sftp` (or the path of"
                " its sftp-server) to its sshd_config and reload sshd"
            )
        return sftp

    def check_file_transfer(self) -> None:
        """Files can be moved to and from the host (its home is read over SFTP)."""
        self._sftp_call("check", "~", lambda sftp, path: sftp.stat(path))

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
