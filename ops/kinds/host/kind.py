"""The host kind: a machine reached over SSH (or this one), probed for what it can run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    Observed,
    Progress,
    Spec,
    SpecError,
    Step,
    no_progress,
)
from llmops.ops.kinds.host.probe import STABLE_FACTS, probe
from llmops.ops.kinds.host.spec import HostSpec
from llmops.ops.transport import HostUnreachable, NoFileTransfer, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


FIXES = {
    "address": "check --address: a name this machine resolves, or an IP it routes to",
    "port": "check --port, and that sshd runs and listens there",
    "user": "check --user, or give --key",
    "key": "check --key and --user: the key must be in the user's authorized_keys",
}


class HostObserved(Observed):
    """A host has nothing to observe before it is probed: the probe is its reconcile."""


class HostKind(Kind[HostSpec, HostObserved]):
    """Reconciling a host = connecting and probing it; removing it = dropping the connection."""

    name: ClassVar[str] = "host"
    folder: ClassVar[str] = "hosts"
    Spec: ClassVar[type[Spec]] = HostSpec
    order: ClassVar[int] = 10

    def admit(self, spec: HostSpec, context: Context) -> None:
        if spec.key and not Path(spec.key).expanduser().is_file():
            raise SpecError(
                "key", f"no key file at {spec.key}", "give the path of a private key file"
            )
        if spec.key and Path(spec.key).expanduser().suffix == ".pub":
            raise SpecError(
                "key", "that is a public key", "give the private key's path (without .pub)"
            )

    def host_of(self, spec: HostSpec) -> str | None:
        return spec.name

    def preflight(self, spec: HostSpec, hosts: HostPool) -> None:
        """A host llmops cannot log into and move files to is bad input, refused before
        anything is written: an unknown or changed key, an address that does not resolve, a
        port that refuses, a failed login, an sshd without SFTP."""
        if spec.local:
            return
        try:
            hosts.check_host_key(spec)
        except HostUnreachable as exc:
            field = exc.field or "address"
            raise SpecError(field, str(exc), FIXES.get(field, FIXES["address"])) from exc
        except NoFileTransfer as exc:
            raise SpecError("sshd", str(exc)) from exc

    def observe(self, spec: HostSpec, hosts: HostPool) -> HostObserved:
        return HostObserved()

    def plan(
        self, desired: HostSpec | None, current: HostSpec | None, observed: HostObserved
    ) -> list[Step]:
        if desired is None:
            return [Step("disconnect", "close the connection")]
        return [Step("probe", f"connect to {desired.address or 'this machine'} and probe")]

    def apply(
        self, step: Step, spec: HostSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        if step.verb == "disconnect":
            if spec is not None:
                hosts.drop(spec.name)
            return {}
        assert spec is not None
        hosts.drop(spec.name)  # the address or key may have changed
        return probe(spec, hosts, progress)

    def validate(self, spec: HostSpec, hosts: HostPool) -> list[Check]:
        started = time.monotonic()
        try:
            facts = probe(spec, hosts, no_progress)
        except TransportError as exc:
            return [Check("reachable", False, str(exc), time.monotonic() - started)]
        checks = [
            Check(
                "reachable",
                True,
                f"probed in {time.monotonic() - started:.2f}s",
                time.monotonic() - started,
            )
        ]
        note = facts.get("command_start_note")  # slow is not a failure: it is named
        checks.append(Check("command start", True,
                            note or f"{facts.get('command_start_s', 0):.2f}s per command"))
        known = hosts.facts(spec.name)
        if known:
            same = {k: (known.get(k), facts.get(k)) for k in STABLE_FACTS}
            diff = {k: v for k, v in same.items() if v[0] != v[1]}
            checks.append(
                Check(
                    "probe matches",
                    not diff,
                    "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in diff.items())
                    or "os, cpu, gpus as before",
                )
            )
        return checks
