"""A small httpx client for a vLLM OpenAI server, used through a local port forward.

The console, the kind's smoke test and the rollback checklist all speak to vLLM through
this one client, so what the tests exercise is what the operator's console runs.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import certifi
import httpx
from prometheus_client.parser import text_string_to_metric_families


class VllmError(RuntimeError):
    """The server answered, but not as a healthy vLLM server would."""


@dataclass
class Completion:
    text: str
    seconds: float
    ttft: float | None = None
    tokens: int = 0


@dataclass
class Burst:
    """Latencies of a short burst of completions: what the rollback checklist reports."""

    latencies: list[float]
    errors: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)


@dataclass
class MetricsSnapshot:
    """The vLLM metric samples worth keeping, summed over label sets, plus raw histograms."""

    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """name -> cumulative [(upper bound, count)], bucket counts summed over label sets."""
    at: float = 0.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values (an empty burst has no latency)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100.0 * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative buckets (e.g. a window's deltas)."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    target = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return prev_bound
            width = count - prev_count
            frac = (target - prev_count) / width if width > 0 else 1.0
            return prev_bound + (bound - prev_bound) * frac
        prev_bound, prev_count = bound, count
    return prev_bound


def vllm_lines(text: str, families: Collection[str] | None = None) -> str:
    """Only vLLM's own families (or those named), without the `_created` timestamps: most of
    /metrics is families nobody reads, and parsing them was most of a poll's cost."""
    heads = tuple(f"vllm:{f}" for f in families) if families else ("vllm:",)
    comments = tuple(f"# {k} {h}" for k in ("HELP", "TYPE") for h in heads)
    return "\n".join(
        line for line in text.splitlines()
        if (line.startswith(heads) and "_created{" not in line) or line.startswith(comments)
    ) + "\n"


def parse_metrics(text: str, families: Collection[str] | None = None) -> MetricsSnapshot:
    """Prometheus text -> vLLM counters, gauges and histograms (prefix `vllm:` dropped);
    `families` (names without the prefix): only those, for a poll that reads a few."""
    snap = MetricsSnapshot(at=time.time())
    hist: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(vllm_lines(text, families)):
        if not family.name.startswith("vllm:"):
            continue
        name = family.name.removeprefix("vllm:")
        for sample in family.samples:
            sname = sample.name.removeprefix("vllm:")
            if family.type == "counter" and sname.endswith("_total"):
                snap.counters[sname] = snap.counters.get(sname, 0.0) + sample.value
            elif family.type == "gauge":
                snap.gauges[sname] = snap.gauges.get(sname, 0.0) + sample.value
            elif family.type == "histogram" and sname.endswith("_bucket"):
                bound = float(sample.labels.get("le", "inf"))
                per = hist.setdefault(name, {})
                per[bound] = per.get(bound, 0.0) + sample.value
            elif family.type == "histogram" and sname.endswith(("_sum", "_count")):
                snap.counters[sname] = snap.counters.get(sname, 0.0) + sample.value
    snap.histograms = {n: sorted(b.items()) for n, b in hist.items()}
    return snap


@cache
def tls_context() -> ssl.SSLContext:
    """One CA bundle for every client of this process. httpx loads certifi's bundle afresh
    for each Client (~35 ms of CPU here), which was two thirds of a telemetry poll's cost."""
    return ssl.create_default_context(cafile=certifi.where())


class VllmClient:
    """Talks to one server at `base_url` (normally http://127.0.0.1:<forwarded port>)."""

    def __init__(self, base_url: str, model: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VllmClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def health(self) -> bool:
        """True once the engine is up; connection errors count as not yet."""
        try:
            return self.http.get("/health", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        resp = self.http.get("/v1/models")
        resp.raise_for_status()
        return [m["id"] for m in resp.json().get("data", [])]

    def completion(
        self, prompt: str, max_tokens: int = 16, model: str | None = None, temperature: float = 0.0
    ) -> Completion:
        started = time.monotonic()
        resp = self.http.post(
            "/v1/completions",
            json={
                "model": model or self.model,
                "prompt": prompt,
                "max_tokens": max_tokens,
                "temperature": temperature,
            },
        )
        if resp.status_code != 200:
            raise VllmError(f"completion answered {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        return Completion(
            text=body["choices"][0]["text"],
            seconds=time.monotonic() - started,
            tokens=int(body.get("usage", {}).get("completion_tokens", 0)),
        )

    def stream_completion(
        self, prompt: str, max_tokens: int = 16, model: str | None = None, temperature: float = 0.0
    ) -> Completion:
        """A streamed completion; `ttft` is the time to the first text chunk."""
        started = time.monotonic()
        ttft: float | None = None
        parts: list[str] = []
        payload = {
            "model": model or self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        with self.http.stream("POST", "/v1/completions", json=payload) as resp:
            if resp.status_code != 200:
                resp.read()
                raise VllmError(f"stream answered {resp.status_code}: {resp.text[:300]}")
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                choices = chunk.get("choices") or []
                if choices and choices[0].get("text"):
                    if ttft is None:
                        ttft = time.monotonic() - started
                    parts.append(choices[0]["text"])
        return Completion(
            text="".join(parts), seconds=time.monotonic() - started, ttft=ttft, tokens=len(parts)
        )

    def embeddings(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        """One vector per text from /v1/embeddings (a pooling server), in the texts' order."""
        resp = self.http.post("/v1/embeddings", json={"model": model or self.model,
                                                      "input": texts})
        if resp.status_code != 200:
            raise VllmError(f"embeddings answered {resp.status_code}: {resp.text[:300]}")
        rows = sorted(resp.json().get("data", []), key=lambda row: int(row.get("index", 0)))
        if len(rows) != len(texts):
            raise VllmError(f"embeddings: {len(rows)} vectors for {len(texts)} texts")
        return [[float(x) for x in row["embedding"]] for row in rows]

    def classify(self, texts: list[str], model: str | None = None
                 ) -> list[tuple[str, list[float]]]:
        """(top label, class probabilities) per text from /classify (a classifier), in order."""
        resp = self.http.post("/classify", json={"model": model or self.model, "input": texts})
        if resp.status_code != 200:
            raise VllmError(f"classify answered {resp.status_code}: {resp.text[:300]}")
        rows = sorted(resp.json().get("data", []), key=lambda row: int(row.get("index", 0)))
        if len(rows) != len(texts):
            raise VllmError(f"classify: {len(rows)} rows for {len(texts)} texts")
        return [(str(row.get("label")), [float(p) for p in row.get("probs") or []])
                for row in rows]

    def burst(self, n: int = 8, prompt: str = "Hello", max_tokens: int = 8) -> Burst:
        """Sequential requests: a p95 that says how this server answers one user now."""
        latencies: list[float] = []
        errors = 0
        for _ in range(n):
            try:
                latencies.append(self.completion(prompt, max_tokens=max_tokens).seconds)
            except (httpx.HTTPError, VllmError):
                errors += 1
        return Burst(latencies, errors)

    def metrics_text(self) -> str:
        resp = self.http.get("/metrics")
        resp.raise_for_status()
        return resp.text

    def metrics(self, families: Collection[str] | None = None) -> MetricsSnapshot:
        return parse_metrics(self.metrics_text(), families)

    def model_cards(self) -> list[dict[str, Any]]:
        """/v1/models as vLLM answers it: an adapter's card has `parent` (the base's name)
        and `root` (the folder it was loaded from)."""
        resp = self.http.get("/v1/models")
        resp.raise_for_status()
        return [dict(card) for card in resp.json().get("data", [])]

    def load_lora_adapter(self, name: str, path: str, *, inplace: bool = False) -> None:
        """Load an adapter under `name` (needs VLLM_ALLOW_RUNTIME_LORA_UPDATING); `inplace`
        replaces one already loaded under that name, keeping its id."""
        body: dict[str, Any] = {"lora_name": name, "lora_path": path}
        if inplace:
            body["load_inplace"] = True
        resp = self.http.post("/v1/load_lora_adapter", json=body, timeout=300.0)
        if resp.status_code != 200:
            raise VllmError(f"load_lora_adapter {name}: {resp.status_code} {resp.text[:300]}")

    def unload_lora_adapter(self, name: str) -> None:
        resp = self.http.post("/v1/unload_lora_adapter", json={"lora_name": name})
        if resp.status_code != 200:
            raise VllmError(f"unload_lora_adapter {name}: {resp.status_code} {resp.text[:300]}")

    def reset_prefix_cache(self) -> bool:
        """Drop cached prefixes (needs VLLM_SERVER_DEV_MODE=1); False when vLLM could not yet
        (blocks still held by running requests: the caller may retry)."""
        resp = self.http.post("/reset_prefix_cache")
        if resp.status_code != 200:
            raise VllmError(f"reset_prefix_cache: {resp.status_code} {resp.text[:300]}")
        return bool(resp.json().get("success", True))

    def sleep(self, level: int = 1) -> None:
        """Standby: offload weights (needs --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1)."""
        resp = self.http.post("/sleep", params={"level": level}, timeout=300.0)
        if resp.status_code != 200:
            raise VllmError(f"sleep: {resp.status_code} {resp.text[:300]}")

    def wake_up(self) -> None:
        resp = self.http.post("/wake_up", timeout=300.0)
        if resp.status_code != 200:
            raise VllmError(f"wake_up: {resp.status_code} {resp.text[:300]}")

    def is_sleeping(self) -> bool:
        resp = self.http.get("/is_sleeping")
        resp.raise_for_status()
        return bool(resp.json().get("is_sleeping"))
