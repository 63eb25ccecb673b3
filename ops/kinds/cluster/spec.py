"""What an operator asks of a Ray cluster: a head host and worker hosts (lab host names), the
Ray release, the network interface the nodes talk over, and what each node offers.

A server names the cluster (`cluster = NAME`) to shard one model over its nodes with vLLM's
Ray backend; llmops starts and watches Ray, it does not replace it."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, NAME_RE, Spec

RAY_VERSION = "2.60.0"
"""The Ray release seen working with vLLM here (see the shared notes)."""
INTERFACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$")
"""A Linux interface name: at most 15 characters, no '/', no spaces (IFNAMSIZ)."""
RESOURCE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
BUILT_IN = {"CPU", "GPU", "memory", "object_store_memory"}
WORKER_PORTS = (10002, 19999)
"""Ray's default worker port range: the GCS port must stay out of it."""
TEMP_DIR_MAX = 40
"""Ray puts unix sockets ~70 characters below each node's temp dir; Linux stops at 107."""
MAX_WORKERS = 64


class ClusterSpec(Spec):
    """One Ray cluster over lab hosts: `ray start --head` on `head`, `--address` on workers."""

    head: str = Field(pattern=NAME_PATTERN, description="Host that runs the Ray head (GCS).")
    workers: list[str] = Field(
        default_factory=list, max_length=MAX_WORKERS, description="Hosts that join the head.",
    )
    ray_version: str = Field(
        default=RAY_VERSION, pattern=r"^\d{1,2}\.\d{1,3}\.\d{1,3}$",
        description="The Ray release every node must have.",
    )
    interface: str = Field(
        default="eth0", description="Network interface the nodes talk over (GLOO/NCCL).",
    )
    port: int = Field(default=6379, ge=1024, le=65535, description="The head's GCS port.")
    num_cpus: int | None = Field(default=None, ge=0, le=4096, description="CPUs per node.")
    num_gpus: int | None = Field(default=None, ge=0, le=64, description="GPUs per node.")
    object_store_mb: int = Field(
        default=500, ge=80, le=1_048_576, description="Object store per node (MB).",
    )
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per node, NAME=AMOUNT.",
    )
    temp_dir: str | None = Field(
        default=None, description="Ray's temp dir root on each node (default /tmp/ray-NAME).",
    )
    start_timeout_s: int = Field(
        default=120, ge=10, le=3600, description="Seconds for every node to join.",
    )

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: list[str]) -> list[str]:
        for w in v:
            if not NAME_RE.match(w):
                raise ValueError(f"{w!r} is not a host name (lab host names only)")
        if len(set(v)) != len(v):
            twice = next(w for w in v if v.count(w) > 1)
            raise ValueError(f"{twice} is listed twice: name each worker host once")
        return v

    @field_validator("interface")
    @classmethod
    def _interface(cls, v: str) -> str:
        if not INTERFACE_RE.match(v) or v in (".", ".."):
            raise ValueError(
                f"{v!r} is not an interface name: 1-15 letters, digits or _.:- "
                "(see `ip -br link` on the hosts, e.g. eth0)"
            )
        return v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int) -> int:
        if WORKER_PORTS[0] <= v <= WORKER_PORTS[1]:
            raise ValueError(
                f"{v} is in Ray's worker port range {WORKER_PORTS[0]}-{WORKER_PORTS[1]}: "
                "pick another (6379 is Ray's default)"
            )
        return v

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: dict[str, float]) -> dict[str, float]:
        for key, amount in v.items():
            if not RESOURCE_RE.match(key) or key in BUILT_IN:
                raise ValueError(
                    f"{key!r}: a custom resource is a name of letters, digits and _ (not "
                    f"{', '.join(sorted(BUILT_IN))}: use num_cpus/num_gpus)"
                )
            if not 0 < amount <= 1_000_000:
                raise ValueError(f"{key} = {amount}: give an amount above 0")
        return v

    @field_validator("temp_dir")
    @classmethod
    def _temp_dir(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^/[A-Za-z0-9_./+-]{0,100}$", v) or ".." in v.split("/"):
            raise ValueError("temp_dir must be a plain absolute path (letters, digits, ._+-/)")
        v = v.rstrip("/") or v
        if len(v) > TEMP_DIR_MAX:
            raise ValueError(
                f"temp_dir is {len(v)} characters: Ray's sockets below it would pass the "
                f"107-character limit; use at most {TEMP_DIR_MAX} (e.g. /tmp/ray-NAME)"
            )
        return v

    @model_validator(mode="after")
    def _head_not_worker(self) -> ClusterSpec:
        if self.head in self.workers:
            raise ValueError(
                f"workers: {self.head} is the head: drop it from workers (the head is a "
                "node already)"
            )
        return self

    def nodes(self) -> list[str]:
        """Every node's host, head first (the order nodes start; stops go in reverse)."""
        return [self.head, *self.workers]

    def node_temp_dir(self, host: str) -> str:
        """Each node's own temp dir (hosts may share a filesystem, as the test hosts do)."""
        root = self.temp_dir or f"/tmp/ray-{self.name[:24]}"
        return f"{root}/n{self.nodes().index(host)}"

    def proc_name(self, host: str) -> str:
        return f"cluster.{self.name}.{'head' if host == self.head else 'node'}"

    def devices_per_node(self, device_key: str | None = None) -> int:
        """Ranks a node holds: its GPUs, else the amount of the custom device resource (a
        CPU node: 1)."""
        if self.num_gpus:
            return self.num_gpus
        if device_key and device_key in self.resources:
            return int(self.resources[device_key])
        return 1

    def capacity(self) -> int:
        """vLLM ranks (tp x pp) the cluster can place: one per device on every node."""
        return len(self.nodes()) * self.devices_per_node()
