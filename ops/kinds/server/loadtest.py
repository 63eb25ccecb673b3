"""The server's load test through its host's tunnel: the bench client (`bench.py`), the figures
and target verdicts (`benchstats.py`), the cost per token (`cost.py`), in one report. A
server that does not answer is refused before a request is counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.server.bench import BenchClient, Progress
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.benchstats import figures, verdict_word, verdicts
from llmops.ops.kinds.server.cost import PowerSampler, gpu_share, hourly, token_costs
from llmops.ops.kinds.server.launch import reach_address, world_size
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from collections.abc import Callable

    from llmops.ops.hostpool import HostPool


class BenchRefused(ValueError):
    """The bench cannot start (the server does not answer): nothing was measured."""


@dataclass
class BenchReport:
    """One bench: what was asked, every figure, the verdict per target, the cost per token."""

    server: str
    params: dict[str, Any]
    figures: dict[str, Any]
    verdicts: list[dict[str, Any]]
    verdict: str
    cost: dict[str, Any] | None
    error_samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Flat figures for a table (and the old `Benchable` protocol)."""
        f = self.figures
        return {"completed": f["completed"], "failed": f["failed"],
                "duration_s": f["duration_s"], "request_throughput": f["request_throughput"],
                "request_goodput": f["request_goodput"],
                "input_tok_s": f["input_throughput"], "output_tok_s": f["output_throughput"],
                **{f"{m}_{s}_ms": f[f"{m}_ms"][s] for m in ("ttft", "tpot", "itl", "e2el")
                   for s in ("mean", "median", "p95", "p99")},
                "verdict": self.verdict,
                "cost_per_1m_output": (self.cost or {}).get("per_1m_output"),
                "cost_per_1m_input": (self.cost or {}).get("per_1m_input")}

    def to_dict(self) -> dict[str, Any]:
        return {"server": self.server, "params": self.params, "figures": self.figures,
                "verdicts": self.verdicts, "verdict": self.verdict, "cost": self.cost,
                "errors": self.error_samples}


def measure(base_url: str, spec: ServerSpec, params: BenchParams,
            progress: Progress | None = None,
            power: Callable[[], float | None] | None = None) -> BenchReport:
    """A bench against a server at `base_url` (already reachable), judged by its targets."""
    check_lengths(spec, params)
    client = BenchClient(base_url, spec.api_model(), params)
    try:
        healthy = httpx.get(f"{client.base_url}/health", timeout=10.0).status_code == 200
    except httpx.HTTPError as exc:
        raise BenchRefused(f"server {spec.name} does not answer ({exc}): start it with "
                           f"`llmops server up {spec.name}` or see `llmops server list`") from exc
    if not healthy:
        raise BenchRefused(f"server {spec.name} is not healthy yet (/health): wait for it to "
                           "start, or see `llmops server logs`")
    outcomes, seconds = client.run(progress)
    fig = figures(outcomes, seconds, params.slo_ms(spec.target_ttft_p95_ms))
    found = verdicts(fig, spec.target_ttft_p95_ms, spec.target_output_tps)
    return BenchReport(
        server=spec.name, params=params.model_dump(exclude_none=True), figures=fig,
        verdicts=[v.__dict__ for v in found], verdict=verdict_word(found), cost=None,
        error_samples=[o.error for o in outcomes if not o.ok][:3])


def check_lengths(spec: ServerSpec, params: BenchParams) -> None:
    """Prompt and output must fit the server's context, or every request fails."""
    if spec.max_model_len and not params.dataset and (
            params.input_len + params.output_len > spec.max_model_len):
        raise BenchRefused(f"input_len + output_len: {params.input_len} + {params.output_len} "
                           f"exceed the server's max_model_len {spec.max_model_len}; ask for "
                           "fewer tokens")


def run_bench(spec: ServerSpec, hosts: HostPool, params: BenchParams,
              progress: Progress | None = None) -> BenchReport:
    """`measure` through a tunnel to the server's port, priced with its host's cost."""
    host = hosts.lookup(spec.host)
    try:
        t = hosts.transport(spec.host)
        facts = host_facts(hosts, spec.host)
        gpus = facts.get("gpus") or []
        mine = spec.gpus or ([g.get("index", i) for i, g in enumerate(gpus)][: world_size(spec)]
                             if gpus else None)
        priced = gpus and getattr(host, "price_per_kwh", None) is not None
        power: PowerSampler | _NoPower = PowerSampler(t, mine) if priced else _NoPower()
        with t.forward(spec.port, reach_address(spec)) as local, power:
            report = measure(f"http://127.0.0.1:{local}", spec, params, progress)
    except TransportError as exc:
        raise BenchRefused(f"host {spec.host} does not answer: {exc}") from exc
    share = gpu_share(world_size(spec), len(gpus))
    report.cost = token_costs(hourly(host, share, power.watts), report.figures)
    return report


class _NoPower:
    watts: float | None = None

    def __enter__(self) -> _NoPower:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def bench(spec: ServerSpec, hosts: HostPool, *, requests: int, concurrency: int,
          max_tokens: int, progress: Callable[[int, int], None] | None = None) -> BenchReport:
    """The `Benchable` door (requests, concurrency, max tokens) onto `run_bench`."""
    params = BenchParams(requests=requests, concurrency=concurrency, output_len=max_tokens)

    def counted(done: int, total: int | None, _seconds: float) -> None:
        if progress is not None:
            progress(done, total or requests)

    return run_bench(spec, hosts, params, counted)
