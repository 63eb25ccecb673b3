"""One pooled, keep-alive connection per host: SSH for remote hosts, Local for this machine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from llmops.ops.ssh import SSHTransport
from llmops.ops.transport import HostAddress, LocalTransport, Transport, TransportError


class HostPool:
    """One pooled, keep-alive connection per host; thread-safe (the TUI calls from workers)."""

    def __init__(self, lookup: Callable[[str], HostAddress | None], known_hosts: Path, *,
                 trust: Mapping[str, str] | None = None, connect_timeout: float = 10.0,
                 facts: Callable[[str], dict[str, Any] | None] | None = None,
                 desired: Callable[[str, str], Any] | None = None,
                 journalled: Callable[[str], list[dict[str, Any]]] | None = None) -> None:
        self.lookup, self.known_hosts, self.connect_timeout = lookup, known_hosts, connect_timeout
        self._trust, self._lock = dict(trust or {}), threading.Lock()
        self._transports: dict[str, Transport] = {}
        self._facts = facts
        self._desired = desired
        self._journalled = journalled

    def facts(self, host: str) -> dict[str, Any] | None:
        """The host's last recorded probe (the lab's), for checks that compare against it."""
        return self._facts(host) if self._facts else None

    def desired(self, kind: str, name: str) -> Any:
        """Another resource's desired spec (the lab's, as the action being reconciled wrote
        it), for a kind that stands on it: an adapter needs its server's host, port and model.
        None when the lab has none (or this pool knows no lab)."""
        return self._desired(kind, name) if self._desired else None

    def journalled(self, ref: str) -> list[dict[str, Any]]:
        """The facts the lab's journal holds from the steps of resource `ref` ("kind/name"),
        newest first: what a kind recorded in an action and needs again when a host lost its
        own copy (an env's manifests). [] when this pool knows no lab."""
        return self._journalled(ref) if self._journalled else []

    def trust(self, host: str, fingerprint: str) -> None:
        """Accept this fingerprint for host's next first connection (after the operator said so)."""
        with self._lock:
            self._trust[host] = fingerprint
            old = self._transports.pop(host, None)
        if old is not None:
            old.close()

    def check_host_key(self, spec: HostAddress) -> None:
        """Log in to a host that may not be in the lab yet: its key must be known or trusted.

        Raises HostKeyError (unknown, wrong --trust, changed), HostUnreachable or
        NoFileTransfer (sshd offers no SFTP); a trusted key is written to known_hosts.
        """
        if spec.local:
            return
        with self._lock:
            trusted = self._trust.get(spec.name)
        probe = SSHTransport(spec, self.known_hosts, trust=trusted,
                             connect_timeout=self.connect_timeout)
        try:
            probe.connect()
            probe.check_file_transfer()  # no SFTP would fail later, mid-action
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
