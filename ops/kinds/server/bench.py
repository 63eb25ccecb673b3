"""The load test's client: streamed completions sent at a Poisson (gamma) rate and/or with a
cap on requests in flight, measured as vLLM's own benchmark client measures them (TTFT at the
first chunk with choices, ITL per later chunk, latency at the last), counted in tokens by the
server's usage (`stream_options.include_usage`), never by chunks. asyncio + httpx in the
caller's thread: the console runs it in a thread worker, the CLI directly."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.benchstats import Outcome

Progress = Callable[[int, int | None, float], None]
"""(measured requests finished, the count asked or None for a duration, seconds elapsed)."""
FILLER = ("The operator rolled back the server after the latency target was missed and the "
          "bench showed how throughput moved between the two versions of its spec; ")


@dataclass(frozen=True)
class Prompt:
    """One request's body: text (from a dataset) or token ids (exact input length)."""

    body: str | list[int]
    output_len: int


class BenchClient:
    """One server at `base_url` serving `model`; `run` is the whole load test."""

    def __init__(self, base_url: str, model: str, params: BenchParams,
                 texts: list[str] | None = None) -> None:
        self.base_url, self.model, self.params = base_url.rstrip("/"), model, params
        self.texts = texts
        """Fixed prompt texts, cycled (the checklist's probe), instead of input_len or a file."""

    # -- the prompts ---------------------------------------------------------------------
    def prompts(self, n: int) -> list[Prompt]:
        """`n` prompts: dataset rows shuffled with the seed (cycled when short), or token-id
        prompts of exactly input_len tokens cut from the server's own tokenization of a text,
        each at another offset so no two share a cached prefix."""
        rng = random.Random(self.params.seed)
        if self.texts:
            return [Prompt(self.texts[i % len(self.texts)], self.params.output_len)
                    for i in range(n)]
        rows = self.params.rows()
        if rows:
            rng.shuffle(rows)
            return [Prompt(r["prompt"], r["output_len"]) for r in (rows[i % len(rows)]
                                                                   for i in range(n))]
        pool = self.token_pool(max(self.params.input_len * 2, 512))
        out = []
        for _ in range(n):
            at = rng.randrange(len(pool))
            ids = [pool[(at + k) % len(pool)] for k in range(self.params.input_len)]
            out.append(Prompt(ids, self.params.output_len))
        return out

    def token_pool(self, size: int) -> list[int]:
        """At least `size` token ids from the server's /tokenize (no tokenizer here)."""
        text = FILLER * (size // 16 + 1)
        resp = httpx.post(f"{self.base_url}/tokenize", timeout=60.0,
                          json={"model": self.model, "prompt": text, "add_special_tokens": False})
        resp.raise_for_status()
        tokens = [int(t) for t in resp.json()["tokens"]]
        if not tokens:
            raise SpecError("input_len", "the server's /tokenize gave no tokens",
                            "bench with a dataset of prompts instead")
        return tokens

    # -- one request ---------------------------------------------------------------------
    def payload(self, prompt: Prompt) -> dict[str, Any]:
        return {"model": self.model, "prompt": prompt.body, "max_tokens": prompt.output_len,
                "temperature": 0.0, "repetition_penalty": 1.0, "stream": True,
                "ignore_eos": self.params.ignore_eos,
                "stream_options": {"include_usage": True}}

    async def one(self, http: httpx.AsyncClient, prompt: Prompt) -> Outcome:
        out = Outcome(ok=False)
        st = last = time.perf_counter()
        out.start = st
        first = False
        try:
            async with http.stream("POST", "/v1/completions", json=self.payload(prompt)) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    out.error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                    return out
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("choices"):
                        now = time.perf_counter()
                        if not first:
                            first, out.ttft = True, now - st
                        else:
                            out.itl.append(now - last)
                        last = now
                        out.chunks += 1
                    elif usage := chunk.get("usage"):
                        out.output_tokens = int(usage.get("completion_tokens") or 0)
                        out.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        except (httpx.HTTPError, ValueError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"[:200]
            return out
        out.latency = last - st
        out.ok = first
        if not first:
            out.error = "no chunk with a token came back"
        return out

    # -- the whole test ------------------------------------------------------------------
    def delays(self, n: int) -> list[float]:
        """Cumulative send times (s) of n requests: gamma(burstiness) gaps at `rate`, scaled so
        the last lands at n / rate, as `vllm bench serve` does; all zero without a rate."""
        rate, shape = self.params.rate, self.params.burstiness
        if not rate:
            return [0.0] * n
        rng = random.Random(self.params.seed + 1)
        at, out = 0.0, []
        for _ in range(n):
            at += rng.gammavariate(shape, 1.0 / (rate * shape))
            out.append(at)
        if out[-1] > 0:
            scale = (n / rate) / out[-1]
            out = [t * scale for t in out]
        return out

    def run(self, progress: Progress | None = None) -> tuple[list[Outcome], float]:
        """Warm-up, then the measured requests: their outcomes and the seconds they took
        (from the first measured send to the last answer, as vLLM's duration)."""
        return asyncio.run(self._run(progress))

    async def _run(self, progress: Progress | None) -> tuple[list[Outcome], float]:
        p = self.params
        planned = p.requests if p.requests is not None else self._duration_cap()
        prompts = self.prompts(planned + p.warmup)
        limits = httpx.Limits(max_connections=p.concurrency or 1000, max_keepalive_connections=64)
        timeout = httpx.Timeout(p.timeout_s, connect=30.0)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits,
                                     timeout=timeout) as http:
            gate = asyncio.Semaphore(p.concurrency or 1_000_000)

            async def limited(prompt: Prompt) -> Outcome:
                async with gate:
                    return await self.one(http, prompt)

            await asyncio.gather(*(limited(pr) for pr in prompts[: p.warmup]))
            outcomes: list[Outcome] = []
            begun = time.perf_counter()

            def finished(task: asyncio.Task[Outcome]) -> None:
                outcomes.append(task.result())
                if progress is not None:
                    progress(len(outcomes), p.requests, time.perf_counter() - begun)

            tasks = []
            for prompt, at in zip(prompts[p.warmup:], self.delays(planned), strict=True):
                if p.duration_s is not None and time.perf_counter() - begun >= p.duration_s:
                    break
                if (wait := begun + at - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                if p.duration_s is not None and time.perf_counter() - begun >= p.duration_s:
                    break
                if p.rate is None and p.duration_s is not None:
                    async with gate:  # no rate, a duration: keep `concurrency` busy, no more
                        pass
                task = asyncio.create_task(limited(prompt))
                task.add_done_callback(finished)
                tasks.append(task)
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
            seconds = time.perf_counter() - begun
        return outcomes, seconds

    def _duration_cap(self) -> int:
        """Requests to prepare for a duration: what the rate sends in it, or a generous bound."""
        p = self.params
        assert p.duration_s is not None
        if p.rate:
            return max(1, min(100_000, int(p.rate * p.duration_s * 1.5) + 8))
        return 100_000 if p.dataset else 20_000
