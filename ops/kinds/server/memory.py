"""How much memory a model's weights need, from its config.json, against the host's probe.

Pure, so it is tested from data files (tests/cases/server/mem_*.toml); the kind's preflight
(path models, cached hub snapshots) and its fetch-weights step (fresh downloads) call it,
so a model that cannot fit is refused before anything stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.hoststate import has_gpus
from llmops.ops.kinds.server.flags import check_args
from llmops.ops.kinds.server.launch import cpu_kvcache_gib, world_size
from llmops.ops.kinds.server.spec import ServerSpec

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float8": 1,
}
QUANT_BYTES: dict[str, float] = {
    "fp8": 1, "fbgemm_fp8": 1, "modelopt": 1, "experts_int8": 1, "compressed-tensors": 1,
    "modelopt_fp4": 0.5, "mxfp4": 0.5, "bitsandbytes": 0.5, "gguf": 0.5,
}
"""Bytes per weight by quantization; awq/gptq-style methods read `bits` from the config."""

BITS_METHODS = {"awq", "awq_marlin", "gptq", "gptq_marlin", "moe_wna16", "quark", "inc"}


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs keep the language model's sizes under `text_config`."""
    inner = config.get("text_config") or config.get("llm_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def parameter_count(config: dict[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer from its config.json, or None if unreadable.

    Embeddings (+ the LM head unless tied) + per layer: attention (q, k, v, o with GQA)
    and a gated MLP (three matrices; MoE counts every expert), norms left out."""
    c = text_config(config)
    try:
        hidden = int(c["hidden_size"])
        layers = int(c["num_hidden_layers"])
        vocab = int(c["vocab_size"])
        heads = int(c.get("num_attention_heads") or 1)
        kv_heads = int(c.get("num_key_value_heads") or heads)
        head_dim = int(c.get("head_dim") or hidden // heads)
        inter = int(c.get("intermediate_size") or 4 * hidden)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    experts = int(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts")
                  or 0)
    mlp = 3 * hidden * inter
    if experts:
        moe_inter = int(c.get("moe_intermediate_size") or inter)
        shared = int(c.get("n_shared_experts") or 0)
        mlp = (experts + shared) * 3 * hidden * moe_inter + hidden * experts
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    tied = bool(c.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    return vocab * hidden * (1 if tied else 2) + layers * (attn + mlp)


def bytes_per_weight(spec: ServerSpec, config: dict[str, Any]) -> tuple[float, str]:
    """Bytes per weight and where that came from (quantization, else dtype)."""
    qconf = text_config(config).get("quantization_config") or {}
    method = spec.quantization or (qconf.get("quant_method") if isinstance(qconf, dict) else None)
    if method:
        if method in BITS_METHODS:
            bits = int(qconf.get("bits") or qconf.get("w_bit") or 4)
            return bits / 8, f"{method} {bits}-bit"
        if method in QUANT_BYTES:
            return QUANT_BYTES[method], str(method)
    dtype = spec.dtype if spec.dtype != "auto" else str(
        config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return DTYPE_BYTES.get(dtype, 2), dtype


@dataclass(frozen=True)
class MemoryEstimate:
    """Weight bytes against what the devices the server will use can hold."""

    params: int
    weight_bytes: int
    per_device_bytes: int
    budget_bytes: int
    """What one device offers the weights: GPU memory x utilization, or RAM less KV cache."""
    where: str
    """"GPU" or "host RAM": what one share of the weights must fit in."""
    basis: str
    budget_note: str = ""

    @property
    def fits(self) -> bool:
        return self.per_device_bytes <= self.budget_bytes

    def explain(self) -> str:
        gib = 2**30
        return (f"~{self.params / 1e9:.2f}B parameters as {self.basis} are "
                f"~{self.weight_bytes / gib:.1f} GiB of weights, "
                f"{self.per_device_bytes / gib:.1f} GiB per {self.where}; one {self.where} "
                f"offers {self.budget_bytes / gib:.1f} GiB ({self.budget_note})")


def memory_estimate(spec: ServerSpec, facts: dict[str, Any],
                    config: dict[str, Any]) -> MemoryEstimate | None:
    """Estimate from config.json and the host's probe; None when either can't say."""
    params = parameter_count(config)
    if params is None:
        return None
    per_weight, basis = bytes_per_weight(spec, config)
    weights = int(params * per_weight)
    ranks = world_size(spec)
    offload = float(check_args(spec.args).get("cpu-offload-gb") or 0) * 2**30
    if has_gpus(facts):
        gpus = {int(g.get("index", i)): g for i, g in enumerate(facts["gpus"])}
        ids = list(spec.gpus or sorted(gpus))[:ranks]
        totals = [int(gpus[i].get("memory_total_bytes") or 0) for i in ids if i in gpus]
        if not totals or min(totals) <= 0:
            return None
        util = spec.gpu_memory_utilization or 0.9
        budget = int(min(totals) * util + offload)
        note = f"{min(totals) / 2**30:.0f} GiB x {util:g} utilization" + (
            f" + {offload / 2**30:g} GiB offloaded to CPU" if offload else "")
        return MemoryEstimate(params, weights, weights // ranks, budget, "GPU", basis, note)
    ram = int(facts.get("ram_total_bytes") or 0)
    if ram <= 0:
        return None
    kv = cpu_kvcache_gib(spec, facts) * 2**30 * ranks  # the KV-cache space is per worker
    note = f"{ram / 2**30:.0f} GiB less {kv // 2**30} GiB of KV cache"
    return MemoryEstimate(params, weights, weights, ram - kv, "host RAM", basis, note)


def refuse_if_too_big(spec: ServerSpec, facts: dict[str, Any], config: dict[str, Any]) -> None:
    """A clear refusal, with the numbers, when the weights alone cannot fit; silent when
    the config or the host's sizes are unknown (the estimate is a floor, not a promise)."""
    est = memory_estimate(spec, facts, config)
    if est is None or est.fits:
        return
    raise SpecError(
        "model",
        f"{spec.model} does not fit on {spec.host}: {est.explain()}",
        "raise tp/pp, quantize, or pick a host with more memory",
    )
