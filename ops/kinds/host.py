"""The host kind: a machine reached over SSH (or this one), probed for what it can run."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from llmops.ops.kinds.base import Check, Context, Kind, Progress, Spec, SpecError, Step, no_progress
from llmops.ops.transport import HostUnreachable, TransportError

if TYPE_CHECKING:
    from llmops.ops.transport import HostPool

ADDRESS_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$"


class HostSpec(Spec):
    """Where a host is and how to log in; never a secret, only a key's path."""

    local: bool = False
    address: str | None = Field(default=None, pattern=ADDRESS_PATTERN)
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    key: str | None = None
    python: str = Field(default="python3", pattern=r"^[A-Za-z0-9_./~+-]{1,255}$")
    workdir: str = Field(default="~/.llmops", pattern=r"^[A-Za-z0-9_./~+-]{1,255}$")
    cost_per_hour: float | None = Field(default=None, ge=0, le=10_000)
    """What the box costs per hour (any currency): load tests turn it into cost per token."""

    @model_validator(mode="after")
    def _local_or_remote(self) -> HostSpec:
        if self.local and self.address:
            raise ValueError("a local host has no address: drop --address or --local")
        if not self.local and not self.address:
            raise ValueError("a remote host needs an address: give --address or use --local")
        return self


class HostKind(Kind[HostSpec]):
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

    def admit_removal(self, name: str, context: Context) -> None:
        users = sorted(
            f"{kind} {res}"
            for (kind, res), spec in context.desired.items()
            if getattr(spec, "host", None) == name
        )
        if users:
            raise SpecError(
                "host", f"{name} is still used by {', '.join(users)}", "remove or move those first"
            )

    def preflight(self, spec: HostSpec, hosts: HostPool) -> None:
        """An unknown or changed host key stops the action before anything is written."""
        if not spec.local:
            try:
                hosts.check_host_key(spec)
            except HostUnreachable:
                pass  # not a key problem: the action itself fails, is journalled and reverted

    def observe(self, spec: HostSpec, hosts: HostPool) -> dict[str, Any]:
        return {}

    def plan(
        self, desired: HostSpec | None, current: HostSpec | None, observed: dict[str, Any]
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


STABLE_FACTS = ("os", "arch", "cpu_count", "gpu_names")


def probe(spec: HostSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Run the probe script with the host's python; facts as a dict."""
    transport = hosts.transport(spec.name)
    progress(f"probing {spec.name}")
    source = resources.files("llmops.ops.hostside").joinpath("probe.py").read_text()
    done = transport.python_script(source, [spec.workdir], timeout=60.0)
    if done.returncode != 0:
        raise TransportError(
            f"probe of {spec.name} failed with {spec.python}: {done.stderr.strip()[-400:]}"
        )
    facts: dict[str, Any] = json.loads(done.stdout)
    facts["gpu_names"] = [g["name"] for g in facts.get("gpus", [])]
    return facts
