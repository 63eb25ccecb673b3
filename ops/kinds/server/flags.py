"""The one place that knows vLLM's extra flags: the allow-list, their values, their argv.

Needs nothing of the spec, so the spec can validate `args` with it and the launch
module can build argv from it without an import loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

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
        Flag("runner", "str", "auto, generate or pooling (pooling: /v1/embeddings only)"),
        Flag("convert", "str", "what the pooling runner serves: auto, embed or classify "
             "(classify: /classify only, e.g. a gateway's guard model)"),
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


def serves_embeddings(args: dict[str, Any]) -> bool:
    """A server started with `--runner pooling` answers /v1/embeddings, not completions: its
    smoke test and checklist embed instead (an index's embedding server). With `--convert
    classify` it answers /classify instead (`serves_classification`)."""
    return args.get("runner") == "pooling" and args.get("convert") != "classify"


def serves_classification(args: dict[str, Any]) -> bool:
    """`--runner pooling --convert classify`: a sequence classifier (a gateway's guard model)
    answers /classify only: its smoke test and checklist classify."""
    return args.get("runner") == "pooling" and args.get("convert") == "classify"


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
            field = SPEC_FIELD_FLAGS[flag]
            raise ValueError(
                f"--{flag} has a spec field of its own: set `{field}` instead of args "
                f"(llmops server up NAME --{field.replace('_', '-')} ...)"
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
    if isinstance(value, str) and value.startswith("-"):
        raise ValueError(
            f"--{flag.flag}: the value {value!r} starts with '-', so vLLM would read it as a "
            f"flag; give a {flag.kind} value ({flag.help})"
        )
    if flag.kind == "json" and isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"--{flag.flag} takes JSON: {exc}") from exc
    return value


def flag_argv(flag: str, value: Any, kind: str) -> list[str]:
    if kind == "bool":
        return [f"--{flag}"] if value else [f"--no-{flag}"]
    if kind == "json":
        return [f"--{flag}", value if isinstance(value, str) else json.dumps(value, sort_keys=True)]
    return [f"--{flag}", str(value)]
