"""The server's telemetry (HasTelemetry): vLLM's /metrics scraped through a long-lived tunnel,
counters turned into rates, histogram deltas over a sliding window into TTFT/e2e p50/p95, and
GPU use from NVML on the host for the GPUs the server was given. The rollback layer polls and
stores it like any kind's (rollback/telemetry.py); nothing here knows about the lab."""

from __future__ import annotations

import json
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING

import httpx

from llmops.ops.kinds.base import Metric
from llmops.ops.kinds.server.client import MetricsSnapshot, VllmClient, histogram_quantile
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.forward import Forward
    from llmops.ops.hostpool import HostPool

WINDOW_SECONDS = 60.0
"""TTFT and latency percentiles are over this sliding window of histogram deltas."""

METRICS = (
    Metric("generation_tps", "tok/s"),
    Metric("prompt_tps", "prompt tok/s"),
    Metric("running", "running", "{:.0f}"),
    Metric("waiting", "waiting", "{:.0f}"),
    Metric("kv_cache_pct", "KV %"),
    Metric("ttft_p50", "TTFT p50 s", "{:.2f}"),
    Metric("ttft_p95", "TTFT p95 s", "{:.2f}"),
    Metric("e2e_p50", "p50 s", "{:.2f}"),
    Metric("e2e_p95", "p95 s", "{:.2f}"),
    Metric("gpu_util_pct", "GPU %", "{:.0f}"),
    Metric("gpu_mem_used_bytes", "GPU bytes", "{:.0f}"),
)
RATES = (("generation_tps", "generation_tokens_total"), ("prompt_tps", "prompt_tokens_total"))
LATENCIES = (("ttft", "time_to_first_token_seconds"), ("e2e", "e2e_request_latency_seconds"))
GAUGES = ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc",
          "gpu_cache_usage_perc")
POLLED = (*(c.removesuffix("_total") for _, c in RATES), *(h for _, h in LATENCIES), *GAUGES)
"""The families a poll reads: only these are parsed (the rest of /metrics cost most of it)."""
Values = dict[str, float | None]


def _delta_buckets(
    new: list[tuple[float, float]], old: list[tuple[float, float]] | None
) -> list[tuple[float, float]]:
    before = dict(old or [])
    return [(bound, max(0.0, count - before.get(bound, 0.0))) for bound, count in new]


class RateWindow:
    """The snapshots of one server over the last WINDOW_SECONDS, to turn counters into rates."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.snaps: deque[MetricsSnapshot] = deque()

    def add(self, snap: MetricsSnapshot) -> Values:
        """The values this snapshot gives, against the ones before it."""
        prev = self.snaps[-1] if self.snaps else None
        self.snaps.append(snap)
        while len(self.snaps) > 2 and snap.at - self.snaps[0].at > self.window:
            self.snaps.popleft()
        oldest = self.snaps[0] if len(self.snaps) > 1 else None
        kv = snap.gauges.get("kv_cache_usage_perc", snap.gauges.get("gpu_cache_usage_perc"))
        values: Values = {
            "running": snap.gauges.get("num_requests_running"),
            "waiting": snap.gauges.get("num_requests_waiting"),
            "kv_cache_pct": kv * 100 if kv is not None else None,
        }
        if prev is not None and snap.at > prev.at:
            dt = snap.at - prev.at
            for name, counter in RATES:
                if counter in snap.counters and counter in prev.counters:
                    rate = (snap.counters[counter] - prev.counters[counter]) / dt
                    values[name] = max(0.0, rate)
        for prefix, hist in LATENCIES:
            buckets = snap.histograms.get(hist)
            if not buckets or oldest is None:
                continue  # a first snapshot counts since the server started, not in the window
            window = _delta_buckets(buckets, oldest.histograms.get(hist))
            values[f"{prefix}_p50"] = histogram_quantile(window, 0.5)
            values[f"{prefix}_p95"] = histogram_quantile(window, 0.95)
        return values


class ServerSampler:
    """One server's sampler: its tunnel and rate window live between polls; a server that
    does not answer closes the tunnel and starts the window afresh."""

    def __init__(self, spec: ServerSpec, hosts: HostPool) -> None:
        self.spec, self.hosts = spec, hosts
        self.tunnel: Forward | None = None
        self.client: VllmClient | None = None
        """Kept with the tunnel: one keep-alive connection for every sample."""
        self.window = RateWindow()

    def sample(self) -> Values | None:
        try:
            if self.tunnel is None or self.client is None:
                self.close()
                transport = self.hosts.transport(self.spec.host)
                self.tunnel = transport.open_forward(self.spec.port, reach_address(self.spec))
                self.client = VllmClient(f"http://127.0.0.1:{self.tunnel.local_port}",
                                         self.spec.api_model(), timeout=5.0)
            snap = self.client.metrics(POLLED)
        except (TransportError, httpx.HTTPError, OSError, ValueError):
            self.close()
            self.window = RateWindow()
            return None
        values = self.window.add(snap)
        values.update(self._gpu())
        return values

    def _gpu(self) -> Values:
        """GPU util/memory from NVML on the host, for the GPUs this server uses."""
        if not (self.hosts.facts(self.spec.host) or {}).get("gpus"):
            return {}
        transport = self.hosts.transport(self.spec.host)
        source = resources.files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
        try:
            gpus = json.loads(transport.python_script(source, [], timeout=15).stdout or "[]")
        except (TransportError, ValueError):
            return {}
        mine = [g for g in gpus if self.spec.gpus is None or g["index"] in self.spec.gpus]
        if not mine:
            return {}
        return {
            "gpu_util_pct": sum(g["utilization_percent"] for g in mine) / len(mine),
            "gpu_mem_used_bytes": float(sum(g["memory_used_bytes"] for g in mine)),
        }

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
