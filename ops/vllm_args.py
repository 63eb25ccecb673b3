"""Server spec -> the exact vLLM command line and environment, as pure functions.

Kept apart from the kind so the plan can be tested from data files, and so the one
place that knows vLLM's flags is small enough to check against vLLM's own sources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llmops.ops.kinds.server import ServerSpec

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"

Quantization = Literal[
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "fp8",
    "bitsandbytes",
    "compressed-tensors",
    "experts_int8",
    "fbgemm_fp8",
    "modelopt",
    "modelopt_fp4",
    "mxfp4",
    "torchao",
    "moe_wna16",
    "gguf",
    "quark",
    "inc",
]


@dataclass(frozen=True)
class Flag:
    """One extra vLLM flag the operator may set; `kind` says how its value is written."""

    flag: str
    kind: str  # "bool" | "int" | "float" | "str" | "json"
    help: str


ALLOWED_FLAGS: dict[str, Flag] = {
    f.flag: f
    for f in [
        Flag("enable-prefix-caching", "bool", "reuse the KV cache of shared prompt prefixes"),
        Flag("enable-chunked-prefill", "bool", "split long prefills into chunks"),
        Flag("kv-cache-dtype", "str", "auto, fp8, fp8_e4m3, fp8_e5m2, ..."),
        Flag(
            "speculative-config",
            "json",
            "speculative decoding, e.g. {method, num_speculative_tokens}",
        ),
        Flag(
            "structured-outputs-config.backend",
            "str",
            "guided decoding backend: auto, xgrammar, guidance, outlines",
        ),
        Flag("max-num-seqs", "int", "requests batched at once"),
        Flag("max-num-batched-tokens", "int", "tokens per scheduler step"),
        Flag("block-size", "int", "KV-cache block size in tokens"),
        Flag(
            "enforce-eager", "bool", "skip CUDA graphs / compilation (faster start, slower serving)"
        ),
        Flag("seed", "int", "sampling seed"),
        Flag("cpu-offload-gb", "float", "GiB of weights offloaded to CPU RAM per GPU"),
        Flag("kv-cache-memory-bytes", "int", "exact KV-cache size per GPU"),
        Flag("tokenizer-mode", "str", "auto, slow, mistral, ..."),
        Flag("revision", "str", "model revision (branch, tag or commit)"),
        Flag("tokenizer-revision", "str", "tokenizer revision"),
        Flag("load-format", "str", "auto, safetensors, pt, ..."),
        Flag("trust-remote-code", "bool", "run the model repository's own Python code"),
        Flag("generation-config", "str", "auto, vllm, or a folder"),
        Flag("override-generation-config", "json", "sampling defaults, e.g. {temperature: 0.5}"),
        Flag("hf-overrides", "json", "overrides of the model's config.json"),
        Flag("limit-mm-per-prompt", "json", "multimodal items per prompt"),
        Flag("max-logprobs", "int", "largest logprobs a request may ask for"),
        Flag("scheduling-policy", "str", "fcfs or priority"),
        Flag("compilation-config", "json", "torch.compile settings"),
        Flag("async-scheduling", "bool", "overlap scheduling with execution"),
        Flag("disable-custom-all-reduce", "bool", "use NCCL all-reduce only"),
        Flag("distributed-executor-backend", "str", "mp or ray"),
        Flag("enable-expert-parallel", "bool", "expert parallelism for MoE models"),
        Flag("reasoning-parser", "str", "parser for reasoning models' thinking"),
        Flag("enable-auto-tool-choice", "bool", "let the model choose tools"),
        Flag("tool-call-parser", "str", "parser of tool calls (hermes, llama3_json, ...)"),
        Flag("chat-template", "str", "path of a chat template on the host"),
        Flag("response-role", "str", "role name of generated messages"),
        Flag("max-cpu-loras", "int", "LoRA adapters cached in CPU memory"),
        Flag("lora-dtype", "str", "auto, float16, bfloat16"),
        Flag("fully-sharded-loras", "bool", "shard LoRA computation across TP ranks"),
        Flag("enable-log-requests", "bool", "log every request"),
        Flag("uvicorn-log-level", "str", "debug, info, warning, error"),
    ]
}
"""Extra flags from `args`. Everything else is either a spec field or refused, so a spec
can never carry --api-key, --ssl-keyfile, --host or anything that escapes the design."""

SPEC_FIELD_FLAGS: dict[str, str] = {
    "model": "model",
    "host": "listen",
    "port": "port",
    "tensor-parallel-size": "tp",
    "pipeline-parallel-size": "pp",
    "dtype": "dtype",
    "quantization": "quantization",
    "max-model-len": "max_model_len",
    "gpu-memory-utilization": "gpu_memory_utilization",
    "enable-lora": "enable_lora",
    "max-lora-rank": "max_lora_rank",
    "max-loras": "max_loras",
    "served-model-name": "served_model_name",
    "enable-sleep-mode": "strategy",
}
"""Flags that have a spec field of their own: named in the error so the fix is obvious."""

ALIASES: dict[str, str] = {
    "guided-decoding-backend": "structured-outputs-config.backend",
    "speculative-model": "speculative-config",
}


def normalise_flag(key: str) -> str:
    """`enable_prefix_caching`, `--enable-prefix-caching` -> `enable-prefix-caching`."""
    flag = key.strip().lstrip("-").replace("_", "-")
    return ALIASES.get(flag, flag)


def check_args(args: dict[str, Any]) -> dict[str, Any]:
    """Normalised extra flags, or ValueError naming the bad one and what is allowed."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        flag = normalise_flag(key)
        if flag in SPEC_FIELD_FLAGS:
            raise ValueError(
                f"--{flag} has a spec field of its own: "
                f"set `{SPEC_FIELD_FLAGS[flag]}` instead of args"
            )
        allowed = ALLOWED_FLAGS.get(flag)
        if allowed is None:
            raise ValueError(
                f"--{flag} is not an allowed vLLM flag; allowed: "
                + ", ".join(sorted(ALLOWED_FLAGS))
            )
        out[flag] = _check_value(allowed, value)
    return out


def _check_value(flag: Flag, value: Any) -> Any:
    """Values keep their TOML type; a wrong type is refused here, not by vLLM at start."""
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str) and "\n" not in value and value != "",
        "json": isinstance(value, dict | str),
    }[flag.kind]
    if not ok:
        raise ValueError(f"--{flag.flag} takes a {flag.kind} value ({flag.help}), got {value!r}")
    if flag.kind == "json" and isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"--{flag.flag} takes JSON: {exc}") from exc
    return value


def _flag_argv(flag: str, value: Any, kind: str) -> list[str]:
    if kind == "bool":
        return [f"--{flag}"] if value else [f"--no-{flag}"]
    if kind == "json":
        return [f"--{flag}", value if isinstance(value, str) else json.dumps(value, sort_keys=True)]
    return [f"--{flag}", str(value)]


def has_gpus(facts: dict[str, Any]) -> bool:
    """A host counts as a GPU host when its last probe saw at least one GPU."""
    return bool(facts.get("gpus"))


def world_size(spec: ServerSpec) -> int:
    return spec.tp * spec.pp


def cpu_kvcache_gib(spec: ServerSpec, facts: dict[str, Any]) -> int:
    """KV-cache GiB on a CPU host: the spec's, else 1/16 of RAM (1..64 GiB)."""
    if spec.cpu_kvcache_gib is not None:
        return spec.cpu_kvcache_gib
    ram_gib = int(facts.get("ram_total_bytes") or 0) // 2**30
    return max(1, min(64, ram_gib // 16))


def cpu_threads_bind(spec: ServerSpec, facts: dict[str, Any]) -> str | None:
    """Core ranges per rank ("0-7|8-15"); None leaves vLLM's own choice for one rank."""
    if spec.cpu_omp_threads_bind is not None:
        return spec.cpu_omp_threads_bind
    ranks = world_size(spec)
    if ranks == 1:
        return None
    cores = int(facts.get("cpu_count") or ranks)
    per = max(1, cores // ranks)
    parts = []
    for r in range(ranks):
        lo, hi = r * per, r * per + per - 1
        parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
    return "|".join(parts)


def vllm_argv(spec: ServerSpec, facts: dict[str, Any], port: int | None = None) -> list[str]:
    """The command that starts the server: the host's python, the OpenAI API server module."""
    python = str(facts.get("python") or "python3")
    argv = [
        python,
        "-m",
        API_SERVER_MODULE,
        "--model",
        spec.model,
        "--host",
        spec.listen,
        "--port",
        str(port if port is not None else spec.port),
    ]
    gpu = has_gpus(facts)
    extra = check_args(spec.args)
    if spec.tp > 1:
        argv += ["--tensor-parallel-size", str(spec.tp)]
    if spec.pp > 1:
        argv += ["--pipeline-parallel-size", str(spec.pp)]
    if world_size(spec) > 1 and not gpu and "distributed-executor-backend" not in extra:
        argv += ["--distributed-executor-backend", "mp"]
    if spec.dtype != "auto":
        argv += ["--dtype", spec.dtype]
    if spec.quantization:
        argv += ["--quantization", spec.quantization]
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    if spec.gpu_memory_utilization is not None and gpu:
        argv += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    if spec.enable_lora:
        argv += ["--enable-lora"]
        if spec.max_lora_rank is not None:
            argv += ["--max-lora-rank", str(spec.max_lora_rank)]
        if spec.max_loras is not None:
            argv += ["--max-loras", str(spec.max_loras)]
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    if spec.strategy == "standby":
        argv += ["--enable-sleep-mode"]
    for flag in sorted(extra):
        argv += _flag_argv(flag, extra[flag], ALLOWED_FLAGS[flag].kind)
    return argv


def is_path_model(model: str) -> bool:
    return model.startswith("/") or model.startswith("~")


def vllm_env(spec: ServerSpec, facts: dict[str, Any]) -> dict[str, str]:
    """Environment on top of the host's: always offline (hub weights are fetched by the plan's
    first step, so a start never downloads and a hub outage never stops a start), CPU settings."""
    env: dict[str, str] = {"HF_HUB_OFFLINE": "1"}
    if spec.enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    if spec.strategy == "standby":
        env["VLLM_SERVER_DEV_MODE"] = "1"  # /sleep and /wake_up exist only in dev mode
    if has_gpus(facts):
        if spec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    else:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kvcache_gib(spec, facts))
        bind = cpu_threads_bind(spec, facts)
        if bind is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = bind
        env["VLLM_HOST_IP"] = "127.0.0.1"
    return env


def launch_hash(spec: ServerSpec, facts: dict[str, Any]) -> str:
    """What the running process must match: argv (port left out, colours differ) + env."""
    argv = vllm_argv(spec, facts, port=0)
    blob = json.dumps({"argv": argv, "env": vllm_env(spec, facts)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
