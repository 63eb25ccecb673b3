"""A load test's figures from its requests, computed as vLLM's `benchmarks/serve.py` does
(`calculate_metrics`), so `llmops server bench` and `vllm bench serve` can be compared: TTFT
per request, TPOT excluding the first token, ITL per gap, e2e, percentiles by linear
interpolation (numpy's default), goodput = requests meeting every SLO per second. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 95, 99)


@dataclass
class Outcome:
    """One measured request (seconds): what the stream gave, counted by the server's usage."""

    ok: bool
    start: float = 0.0
    ttft: float = 0.0
    latency: float = 0.0
    """From the request sent to the last token (vLLM: the last chunk with choices)."""
    itl: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    chunks: int = 0
    error: str = ""


def pct(values: list[float], p: float) -> float:
    """numpy.percentile's linear interpolation; 0.0 for no values (as vLLM's `or 0`)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def spread(values: list[float]) -> dict[str, float]:
    """mean, median, p95, p99 in milliseconds."""
    ms = [v * 1000 for v in values]
    out = {"mean": sum(ms) / len(ms) if ms else 0.0}
    out.update({("median" if p == 50 else f"p{p}"): pct(ms, p) for p in PERCENTILES})
    return {k: round(v, 3) for k, v in out.items()}


def tpot(o: Outcome) -> float | None:
    """Time per output token after the first; None for one token or less (vLLM skips it)."""
    if o.output_tokens <= 1:
        return None
    return (o.latency - o.ttft) / (o.output_tokens - 1)


def is_good(o: Outcome, slo_ms: dict[str, float]) -> bool:
    """A completed request within every SLO (ttft, tpot, e2el in ms), as vLLM's goodput."""
    got = {"ttft": o.ttft, "tpot": tpot(o) or 0.0, "e2el": o.latency}
    return o.ok and all(got[k] * 1000 <= v for k, v in slo_ms.items())


def figures(outcomes: list[Outcome], seconds: float, slo_ms: dict[str, float]) -> dict[str, Any]:
    """Every figure of a bench from its measured requests (warm-up excluded by the caller)."""
    done = [o for o in outcomes if o.ok]
    dur = seconds if seconds > 0 else float("inf")
    total_in = sum(o.prompt_tokens for o in done)
    total_out = sum(o.output_tokens for o in done)
    tpots = [t for o in done if (t := tpot(o)) is not None]
    return {
        "completed": len(done),
        "failed": len(outcomes) - len(done),
        "duration_s": round(seconds, 4),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": round(len(done) / dur, 4),
        "request_goodput": round(sum(is_good(o, slo_ms) for o in done) / dur, 4),
        "input_throughput": round(total_in / dur, 3),
        "output_throughput": round(total_out / dur, 3),
        "total_token_throughput": round((total_in + total_out) / dur, 3),
        "ttft_ms": spread([o.ttft for o in done]),
        "tpot_ms": spread(tpots),
        "itl_ms": spread([gap for o in done for gap in o.itl]),
        "e2el_ms": spread([o.latency for o in done]),
        "slo_ms": dict(slo_ms),
    }


@dataclass(frozen=True)
class Verdict:
    """One target against one figure."""

    target: str
    goal: float
    value: float | None
    ok: bool
    words: str


def verdicts(fig: dict[str, Any], ttft_p95_ms: float, output_tps: float) -> list[Verdict]:
    """The server's targets against a bench: first-token p95 below, output tok/s above. A bench
    where nothing completed fails both (no figure is not a pass)."""
    measured = fig.get("completed", 0) > 0
    p95 = fig["ttft_ms"]["p95"] if measured else None
    tps = fig["output_throughput"] if measured else None
    return [
        Verdict("ttft_p95_ms", ttft_p95_ms, p95, p95 is not None and p95 < ttft_p95_ms,
                f"first-token p95 {_num(p95)} ms < {ttft_p95_ms:g} ms"),
        Verdict("output_tps", output_tps, tps, tps is not None and tps > output_tps,
                f"output {_num(tps)} tok/s > {output_tps:g} tok/s"),
    ]


def verdict_word(found: list[Verdict]) -> str:
    return "pass" if found and all(v.ok for v in found) else "fail"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
