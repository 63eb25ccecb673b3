"""What an SSH host shows before anyone logs in: its host key's fingerprint (as OpenSSH prints
it, for the operator to compare) and a short reason when the TCP connect itself fails. Apart from
ssh.py so the transport module stays about sessions, commands and files."""

from __future__ import annotations

import base64
import errno
import hashlib
import socket

import paramiko

from llmops.ops.transport import HostUnreachable


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
