"""The built-in load test: a bounded burst of concurrent streamed completions against one
server (through its tunnel), reported as throughput, TTFT and latency percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from llmops.ops.kinds.server.client import Completion, VllmClient, VllmError, percentile
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MAX_REQUESTS = 2000
MAX_CONCURRENCY = 64


@dataclass
class LoadResult:
    """What one load test measured; cost fields are set when the host has a price."""

    requests: int
    concurrency: int
    seconds: float
    ok: int
    errors: int
    completion_tokens: int
    latencies: list[float] = field(default_factory=list, repr=False)
    ttfts: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)
    cost_per_hour: float | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def latency_p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def latency_p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def ttft_p50(self) -> float:
        return percentile(self.ttfts, 50)

    @property
    def ttft_p95(self) -> float:
        return percentile(self.ttfts, 95)

    @property
    def cost_per_million_tokens(self) -> float | None:
        """The host's hourly price spread over the tokens it made at this rate."""
        if self.cost_per_hour is None or self.tokens_per_s <= 0:
            return None
        return self.cost_per_hour / (self.tokens_per_s * 3600) * 1_000_000

    def summary(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "requests_per_s": round(self.requests_per_s, 2),
            "ttft_p50_s": round(self.ttft_p50, 4),
            "ttft_p95_s": round(self.ttft_p95, 4),
            "latency_p50_s": round(self.latency_p50, 4),
            "latency_p95_s": round(self.latency_p95, 4),
            "cost_per_million_tokens": (
                round(self.cost_per_million_tokens, 4)
                if self.cost_per_million_tokens is not None
                else None
            ),
        }


def run_load(
    base_url: str,
    model: str,
    *,
    requests: int = 32,
    concurrency: int = 4,
    max_tokens: int = 32,
    prompt: str = "The operator asked",
    timeout: float = 120.0,
    cost_per_hour: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Send `requests` streamed completions, `concurrency` at a time; bounded and self-stopping."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests: {requests} is outside 1..{MAX_REQUESTS}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency: {concurrency} is outside 1..{MAX_CONCURRENCY}")
    done: list[Completion] = []
    errors: list[str] = []

    def one(i: int) -> None:
        with VllmClient(base_url, model, timeout=timeout) as client:
            try:
                done.append(
                    client.stream_completion(
                        f"{prompt} #{i}", max_tokens=max_tokens, temperature=0.8
                    )
                )
            except (httpx.HTTPError, VllmError) as exc:
                errors.append(str(exc)[:200])
        if progress:
            progress(len(done) + len(errors), requests)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llmops-load") as pool:
        list(pool.map(one, range(requests)))
    seconds = time.monotonic() - started
    return LoadResult(
        requests=requests,
        concurrency=concurrency,
        seconds=seconds,
        ok=len(done),
        errors=len(errors),
        completion_tokens=sum(c.tokens for c in done),
        latencies=[c.seconds for c in done],
        ttfts=[c.ttft for c in done if c.ttft is not None],
        error_samples=errors[:3],
        cost_per_hour=cost_per_hour,
    )


def bench(
    spec: ServerSpec,
    hosts: HostPool,
    *,
    requests: int,
    concurrency: int,
    max_tokens: int,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """`run_load` through a tunnel to the server's port, priced with its host's cost per hour."""
    cost = getattr(hosts.lookup(spec.host), "cost_per_hour", None)
    with hosts.transport(spec.host).forward(spec.port, reach_address(spec)) as local:
        return run_load(
            f"http://127.0.0.1:{local}",
            spec.api_model(),
            requests=requests,
            concurrency=concurrency,
            max_tokens=max_tokens,
            cost_per_hour=cost,
            progress=progress,
        )
