"""What an operator asks of a vLLM server: the spec, validated before anything is written."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, Spec
from llmops.ops.kinds.server.flags import Quantization, check_args

HUB_PART = r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"^{HUB_PART}/{HUB_PART}$")
"""The hub's own rule: each part starts and ends with a letter or digit, no `--` or `..`."""
MAX_GPUS = 8
COLOURS = ("blue", "green")
"""The two processes behind a blue-green or standby server's live port."""


REVISION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
"""A hub revision in a model id's `:TAG`: a tag, branch or commit sha, letters, digits and
`._-` (no `/`, no `..`): nothing a shell, a URL or a cache path reads otherwise."""


def model_ref(v: str) -> str:
    """A model as every kind names one: a hub id org/name or a plain absolute path on the host."""
    if v.startswith("/"):
        if "\x00" in v or "/../" in v + "/":
            raise ValueError("a model path must be a plain absolute path")
        return v.rstrip("/") or v
    if not HUB_ID.fullmatch(v) or ".." in v or "--" in v:
        repo, colon, tag = v.partition(":")
        if colon and HUB_ID.fullmatch(repo) and ".." not in repo and "--" not in repo:
            if not pinned(tag):
                raise ValueError(
                    f"{v!r}: the revision after ':' must be a tag, branch or commit of "
                    "letters, digits and . _ - (e.g. org/name:1.2)")
            raise ValueError(
                f"{v!r}: a revision (org/name:TAG) is taken by a server's model only; give "
                "the hub id org/name here")
        raise ValueError(f"{v!r} is neither a hub id like org/name nor an absolute path")
    return v


def pinned(tag: str) -> bool:
    return bool(REVISION.fullmatch(tag)) and ".." not in tag


def split_revision(v: str) -> tuple[str, str | None]:
    """`org/name:TAG` -> ("org/name", "TAG"): a hub id at a revision (vLLM's --revision, the
    hub's tag, branch or commit); anything else, a bad TAG included, -> (v, None), for
    `model_ref` to refuse with its reason."""
    repo, colon, tag = v.partition(":")
    if v.startswith("/") or not colon or not HUB_ID.fullmatch(repo) or not pinned(tag):
        return v, None
    return repo, tag


def model_id(model: str, revision: object) -> str:
    """The id a registry would give: org/name:TAG when a hub model is pinned to a revision,
    the model as given otherwise (what the policy's `models.allowed` matches)."""
    if revision and not model.startswith("/"):
        return f"{model}:{revision}"
    return model


class ServerSpec(Spec):
    """One vLLM server: what it serves, how it is sharded, how a change goes live."""

    host: str = Field(pattern=NAME_PATTERN, description="Host to run on.")
    model: str = Field(description="Hub id org/name or an absolute path on the host.")
    tp: int = Field(default=1, ge=1, le=MAX_GPUS, description="Tensor-parallel size.")
    pp: int = Field(default=1, ge=1, le=MAX_GPUS, description="Pipeline-parallel size.")
    gpus: list[int] | None = Field(
        default=None, max_length=MAX_GPUS, description="GPU ids, e.g. 0,1 (CUDA_VISIBLE_DEVICES)."
    )
    cluster: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="Ray cluster whose nodes the ranks span (vLLM's Ray backend).",
    )
    """tp x pp ranks placed on the cluster's nodes (one per device); the host is the node the
    API server runs on (see ops/kinds/cluster/serving.py)."""
    env: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="Env (llmops env) whose venv runs vLLM (default: the host's python).",
    )
    """An `env` on the same host: vLLM starts from that env's venv (the set it points at), and
    an upgrade or rollback of the env restarts the server in the same action."""
    port: int = Field(default=8000, ge=1024, le=65535, description="Port clients use.")
    listen: str = Field(
        default="127.0.0.1",
        pattern=r"^([0-9.]{7,15}|[0-9a-fA-F:]{2,39}|localhost)$",
        description="Address the port listens on (0.0.0.0 for all).",
    )
    dtype: Literal["auto", "float16", "bfloat16", "float32", "half", "float"] = Field(
        default="auto", description="Weights and activations dtype."
    )
    quantization: Quantization | None = Field(default=None, description="Quantization method.")
    max_model_len: int | None = Field(
        default=None, ge=16, le=10_000_000, description="Context length."
    )
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Fraction of GPU memory for vLLM."
    )
    enable_lora: bool = Field(default=False, description="Serve LoRA adapters.")
    max_lora_rank: int | None = Field(
        default=None, ge=1, le=512, description="Largest LoRA rank served."
    )
    max_loras: int | None = Field(
        default=None, ge=1, le=256, description="LoRA adapters served at once."
    )
    runtime_lora: bool = Field(
        default=False,
        description="Let llmops hot-load adapters (dev endpoints on loopback).",
    )
    """vLLM's runtime LoRA API and /reset_prefix_cache: VLLM_ALLOW_RUNTIME_LORA_UPDATING and
    VLLM_SERVER_DEV_MODE, so the server must stay on loopback (admission says so)."""
    served_model_name: str | None = Field(
        default=None, pattern=r"^[\w./:-]{1,128}$", description="The name requests use."
    )
    args: dict[str, Any] = Field(default_factory=dict, description="Extra allowed vLLM flags.")
    strategy: Literal["recreate", "blue-green", "standby", "canary"] = Field(
        default="recreate", description="How a change goes live."
    )
    grace_minutes: float = Field(
        default=10.0, ge=0.0, le=24 * 60, description="Blue-green: keep the old server warm."
    )
    colour_ports: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Blue-green/standby: the two colours' loopback ports.",
    )
    """Ports of the blue and green servers behind the live port (default port+10000, +20000)."""
    cpu_kvcache_gib: int | None = Field(
        default=None, ge=1, le=4096, description="CPU build: GiB of KV cache."
    )
    cpu_omp_threads_bind: str | None = Field(
        default=None,
        pattern=r"^(auto|nobind|[0-9,|-]+)$",
        description="CPU build: cores per rank, e.g. 0-7|8-15.",
    )
    cpu_inline_worker: bool = Field(
        default=False,
        description="CPU build, one rank: the model runs in vLLM's engine process, no worker "
        "process of its own (one vLLM import fewer: starts sooner, less RAM).",
    )
    """vLLM's CPU platform gives even a single rank a worker process of its own (its OMP
    setup happens before that process starts); VLLM_ENABLE_V1_MULTIPROCESSING=0 lets the
    engine-core process run the model itself (the API server still runs apart). Worth it on a
    small CPU box whose restarts are what a rollback waits on; on a GPU host a single rank
    already runs in the engine's process, so there it changes nothing."""
    start_timeout_s: int = Field(
        default=900, ge=10, le=7200, description="Seconds a start may take."
    )
    p95_limit_ms: int | None = Field(
        default=None, ge=1, le=600_000, description="Checklist: bound on a burst's p95 (ms)."
    )
    """The checklist's bound on a burst's p95 latency (8-token completions); None = 10 s."""
    target_ttft_p95_ms: float = Field(
        default=200.0, gt=0, le=600_000, description="Target: first-token p95 (ms)."
    )
    target_output_tps: float = Field(
        default=100.0, ge=0, le=10_000_000, description="Target: output tokens/s at least."
    )
    """The seed's checklist as defaults; benches give pass/fail per target, alerts watch them."""
    alert_kv_cache_pct: float = Field(
        default=90.0, gt=0, le=100, description="Alert: KV cache use above this (%)."
    )
    alert_gpu_memory_pct: float = Field(
        default=97.0, gt=0, le=100, description="Alert: GPU memory use above this (%)."
    )
    canary_share: float | None = Field(
        default=None, ge=0.001, le=0.999,
        description="Canary: share of the gateways' traffic (0.1).",
    )
    """Canary fields: None = the default in ops/kinds/server/canary.py `Gates` (so a server
    that is no canary carries none of them in its TOML)."""
    canary_window_s: float | None = Field(
        default=None, ge=5, le=3600, description="Canary: seconds watched (60)."
    )
    canary_min_requests: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Canary: requests it must get (10)."
    )
    canary_max_ttft_ratio: float | None = Field(
        default=None, ge=1, le=100, description="Canary: most TTFT p95 vs live (1.2x)."
    )
    canary_max_itl_ratio: float | None = Field(
        default=None, ge=1, le=100, description="Canary: most ITL p95 vs live (1.2x)."
    )
    canary_floor_ms: float | None = Field(
        default=None, ge=0, le=600_000, description="Canary: ms slower a breach needs (50)."
    )
    canary_max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="Canary: most error rate (0.01)."
    )

    @model_validator(mode="before")
    @classmethod
    def _pinned_model(cls, data: Any) -> Any:
        """`model = "org/name:TAG"` is the hub model at revision TAG: kept as model = org/name
        and args.revision = TAG (what vLLM's --revision and the weights fetch read); the TAG
        replaces any other revision, so the id given is the version served."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return data
        repo, tag = split_revision(data["model"])
        if tag is None:
            return data
        args = data.get("args")
        return {**data, "model": repo,
                "args": {**(args if isinstance(args, dict) else {}), "revision": tag}}

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return model_ref(v)

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

    @field_validator("runtime_lora")
    @classmethod
    def _runtime_lora(cls, v: bool, info: ValidationInfo) -> bool:
        if v and not info.data.get("enable_lora"):
            raise ValueError("runtime_lora needs enable_lora = true")
        return v

    @field_validator("strategy")
    @classmethod
    def _sharded(cls, v: str, info: ValidationInfo) -> str:
        if v != "recreate" and info.data.get("cluster"):
            raise ValueError(
                f"{v} runs two copies; a server sharded over a cluster is recreated "
                "(strategy = 'recreate')"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env_not_clustered(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("cluster"):
            raise ValueError(
                "a server sharded over a cluster runs its ranks with the nodes' python; "
                "drop env (give the cluster's hosts the packages instead)"
            )
        return v

    @field_validator("cpu_inline_worker")
    @classmethod
    def _inline_one_rank(cls, v: bool, info: ValidationInfo) -> bool:
        ranks = int(info.data.get("tp", 1)) * int(info.data.get("pp", 1))
        if v and (ranks > 1 or info.data.get("cluster")):
            raise ValueError(
                f"cpu_inline_worker runs one rank in vLLM's engine process; this server has "
                f"tp x pp = {ranks}{' on a cluster' if info.data.get('cluster') else ''}: "
                "drop cpu_inline_worker"
            )
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

    def model_id(self) -> str:
        """org/name:TAG when pinned to a revision (args.revision), else the model as given."""
        return model_id(self.model, self.args.get("revision"))

    def api_model(self) -> str:
        """The name requests use: the served name if set, else the model as given."""
        return self.served_model_name or self.model

    def ports(self) -> set[int]:
        return {self.port} | (
            set(self.colour_ports_or_default()) if self.strategy != "recreate" else set()
        )
