"""How much memory a LoRA / QLoRA run needs, from the base's config.json, against the host:
the server's parameter count (ops/kinds/server/memory.py) for the frozen base, plus the LoRA
parameters with their gradients and AdamW states, plus activations and logits for one
device batch. Pure, so it is tested from data files (tests/cases/run/mem_*.toml).

A floor, not a promise: it refuses only what cannot fit, with the numbers. On a GPU host the
whole model sits on each GPU the run uses (data parallel), so it is held against the
smallest of them; on a CPU host against the RAM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.hoststate import has_gpus
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.memory import DTYPE_BYTES, parameter_count, text_config

TRAINABLE_BYTES = 16
"""Per LoRA parameter: fp32 weight (4) + its gradient (4) + AdamW's two moments (8)."""
ACT_BYTES = 34
"""Per token, hidden unit and layer kept for the backward pass at 16-bit, without
recomputation (the trainer turns no gradient checkpointing on) and without the attention
scores (SDPA does not keep them): Korthikanti et al. 2022. Twice that in float32 (CPU)."""
LOGIT_BYTES = 8
"""Per token and vocabulary entry: fp32 logits and their gradient."""
QLORA_BYTES = 0.55
"""4-bit NF4 weights plus their quantization constants (double-quantized)."""
GPU_HEADROOM = 0.95
"""What of a GPU's memory a process can use (the CUDA context and allocator take the rest)."""
GIB = 2**30


def lora_parameters(config: dict[str, Any], spec: RunSpec) -> int | None:
    """LoRA's A and B matrices for every targeted module: r x (in + out) per module per layer
    (every expert's for an MoE MLP); an unknown module name counts as hidden -> hidden."""
    c = text_config(config)
    try:
        hidden = int(c["hidden_size"])
        layers = int(c["num_hidden_layers"])
        heads = int(c.get("num_attention_heads") or 1)
        kv_heads = int(c.get("num_key_value_heads") or heads)
        head_dim = int(c.get("head_dim") or hidden // heads)
        inter = int(c.get("intermediate_size") or 4 * hidden)
        vocab = int(c.get("vocab_size") or 0)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    experts = int(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts")
                  or 0)
    copies = experts + int(c.get("n_shared_experts") or 0) if experts else 1
    mlp_inter = int(c.get("moe_intermediate_size") or inter) if experts else inter
    shapes: dict[str, tuple[int, int, int]] = {  # module: (in, out, copies per layer)
        "q_proj": (hidden, heads * head_dim, 1),
        "k_proj": (hidden, kv_heads * head_dim, 1),
        "v_proj": (hidden, kv_heads * head_dim, 1),
        "o_proj": (heads * head_dim, hidden, 1),
        "gate_proj": (hidden, mlp_inter, copies),
        "up_proj": (hidden, mlp_inter, copies),
        "down_proj": (mlp_inter, hidden, copies),
    }
    total = 0
    for module in spec.target_modules:
        leaf = module.rsplit(".", 1)[-1]
        if leaf == "lm_head":
            total += spec.r * (hidden + vocab)
            continue
        if leaf == "embed_tokens":
            total += spec.r * (vocab + hidden)
            continue
        d_in, d_out, n = shapes.get(leaf, (hidden, hidden, 1))
        total += layers * n * spec.r * (d_in + d_out)
    return total


@dataclass(frozen=True)
class RunMemoryEstimate:
    """Bytes a run needs on one device, by part, against what that device offers."""

    params: int
    base_bytes: int
    lora_params: int
    trainable_bytes: int
    activation_bytes: int
    budget_bytes: int
    where: str
    """"GPU" or "host RAM"."""
    basis: str
    budget_note: str

    @property
    def total_bytes(self) -> int:
        return self.base_bytes + self.trainable_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.budget_bytes

    def explain(self) -> str:
        need = "per GPU" if self.where == "GPU" else "in host RAM"
        offer = "one GPU" if self.where == "GPU" else "the host"
        return (
            f"~{self.params / 1e9:.2f}B base parameters as {self.basis} are "
            f"{self.base_bytes / GIB:.1f} GiB, {self.lora_params / 1e6:.1f}M LoRA parameters "
            f"with gradients and AdamW states {self.trainable_bytes / GIB:.1f} GiB, activations "
            f"and logits of one batch {self.activation_bytes / GIB:.1f} GiB: "
            f"{self.total_bytes / GIB:.1f} GiB {need}; {offer} offers "
            f"{self.budget_bytes / GIB:.1f} GiB ({self.budget_note})"
        )


def base_bytes_per_weight(spec: RunSpec, config: dict[str, Any], gpu: bool) -> tuple[float, str]:
    """QLoRA: 4-bit; on a GPU the base's own dtype (bf16 mostly); on a CPU float32."""
    if spec.qlora:
        return QLORA_BYTES, "4-bit NF4"
    if not gpu:
        return 4, "float32 (CPU)"
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    if dtype == "float32":
        dtype = "bfloat16"  # the trainer loads a float32 checkpoint in bf16 on a GPU
    return DTYPE_BYTES.get(dtype, 2), dtype


def memory_estimate(
    spec: RunSpec, facts: dict[str, Any], config: dict[str, Any]
) -> RunMemoryEstimate | None:
    """Estimate from config.json and the host's probe; None when either can't say."""
    params = parameter_count(config)
    lora = lora_parameters(config, spec)
    if params is None or lora is None:
        return None
    c = text_config(config)
    gpu = has_gpus(facts)
    per_weight, basis = base_bytes_per_weight(spec, config, gpu)
    hidden, layers = int(c["hidden_size"]), int(c["num_hidden_layers"])
    vocab = int(c.get("vocab_size") or 0)
    tokens = spec.batch_size * spec.max_seq_len
    act_scale = 1 if gpu else 2  # float32 activations on a CPU
    activations = tokens * hidden * layers * ACT_BYTES * act_scale
    activations += tokens * vocab * LOGIT_BYTES
    if gpu:
        gpus = {int(g.get("index", i)): g for i, g in enumerate(facts["gpus"])}
        ids = [g for g in (spec.gpus or sorted(gpus)) if g in gpus]
        totals = [int(gpus[i].get("memory_total_bytes") or 0) for i in ids]
        if not totals or min(totals) <= 0:
            return None
        budget = int(min(totals) * GPU_HEADROOM)
        note = f"the smallest of GPUs {ids}: {min(totals) / GIB:.0f} GiB x {GPU_HEADROOM:g}"
        where = "GPU"
    else:
        budget = int(facts.get("ram_total_bytes") or 0)
        if budget <= 0:
            return None
        note = f"{budget / GIB:.0f} GiB of RAM"
        where = "host RAM"
    return RunMemoryEstimate(
        params=params,
        base_bytes=int(params * per_weight),
        lora_params=lora,
        trainable_bytes=lora * TRAINABLE_BYTES,
        activation_bytes=activations,
        budget_bytes=budget,
        where=where,
        basis=basis,
        budget_note=note,
    )


def refuse_if_too_big(spec: RunSpec, facts: dict[str, Any], config: dict[str, Any]) -> None:
    """A clear refusal, with the numbers, when the run cannot fit; silent when the config or
    the host's sizes are unknown. Names the base when its weights alone do not fit, else the
    batch (batch_size x max_seq_len is what the operator can lower)."""
    est = memory_estimate(spec, facts, config)
    if est is None or est.fits:
        return
    if est.base_bytes + est.trainable_bytes > est.budget_bytes:
        field = "base"
        fix = (
            "use qlora = true on a GPU host, or a host with more memory"
            if not spec.qlora
            else "pick a GPU with more memory"
        )
    else:
        field = "batch_size"
        fix = "lower batch_size (raise grad_accum to keep the batch) or max_seq_len"
    raise SpecError(field, f"run {spec.name} does not fit on {spec.host}: {est.explain()}", fix)
