"""Server telemetry: rates and latency percentiles from vLLM's /metrics, kept bounded in
`lab.db` so the console can draw sparklines and compute cost per token."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from importlib import resources
from typing import TYPE_CHECKING

import httpx
import sqlite_utils

from llmops.ops.forward import Forward
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.kinds.server.client import MetricsSnapshot, VllmClient, histogram_quantile
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine

KEEP_SECONDS = 24 * 3600
KEEP_ROWS_PER_SERVER = 2000
WINDOW_SECONDS = 60.0
"""TTFT and latency percentiles are over this sliding window of histogram deltas."""


@dataclass
class Sample:
    """One poll of one server, as the Servers view shows it."""

    server: str
    at: float
    up: bool = True
    generation_tps: float | None = None
    prompt_tps: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_pct: float | None = None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    e2e_p50: float | None = None
    e2e_p95: float | None = None
    gpu_util_pct: float | None = None
    gpu_mem_used_bytes: float | None = None
    rss_bytes: float | None = None


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

    def add(self, server: str, snap: MetricsSnapshot) -> Sample:
        prev = self.snaps[-1] if self.snaps else None
        self.snaps.append(snap)
        while len(self.snaps) > 2 and snap.at - self.snaps[0].at > self.window:
            self.snaps.popleft()
        oldest = self.snaps[0] if len(self.snaps) > 1 else None
        sample = Sample(
            server=server,
            at=snap.at,
            running=snap.gauges.get("num_requests_running"),
            waiting=snap.gauges.get("num_requests_waiting"),
        )
        kv = snap.gauges.get("kv_cache_usage_perc", snap.gauges.get("gpu_cache_usage_perc"))
        sample.kv_cache_pct = kv * 100 if kv is not None else None
        if prev is not None and snap.at > prev.at:
            dt = snap.at - prev.at
            for attr, counter in (
                ("generation_tps", "generation_tokens_total"),
                ("prompt_tps", "prompt_tokens_total"),
            ):
                if counter in snap.counters and counter in prev.counters:
                    rate = (snap.counters[counter] - prev.counters[counter]) / dt
                    setattr(sample, attr, max(0.0, rate))
        for prefix, hist in (
            ("ttft", "time_to_first_token_seconds"),
            ("e2e", "e2e_request_latency_seconds"),
        ):
            buckets = snap.histograms.get(hist)
            if not buckets:
                continue
            window = _delta_buckets(buckets, oldest.histograms.get(hist) if oldest else None)
            setattr(sample, f"{prefix}_p50", histogram_quantile(window, 0.5))
            setattr(sample, f"{prefix}_p95", histogram_quantile(window, 0.95))
        return sample


class TelemetryStore:
    """The `telemetry` table: appended by pollers, expired by age and count per server."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        lock: threading.RLock | None = None,
        *,
        keep_rows: int = KEEP_ROWS_PER_SERVER,
    ) -> None:
        self.db = db
        self.keep_rows = keep_rows
        self.lock = lock or threading.RLock()
        with self.lock:
            if "telemetry" not in self.db.table_names():
                columns = {f.name: (str if f.name == "server" else float) for f in fields(Sample)}
                self.db.table("telemetry").create(columns)
                self.db.table("telemetry").create_index(["server", "at"])

    def add(self, sample: Sample) -> None:
        row = asdict(sample)
        row["up"] = 1.0 if sample.up else 0.0
        with self.lock, self.db.conn:
            self.db.table("telemetry").insert(row)
            self.db.execute("delete from telemetry where at < ?", [time.time() - KEEP_SECONDS])
            self.db.execute(
                "delete from telemetry where server = ? and rowid not in (select rowid from "
                "telemetry where server = ? order by at desc limit ?)",
                [sample.server, sample.server, self.keep_rows],
            )

    def recent(self, server: str, limit: int = 60) -> list[Sample]:
        """The newest samples of a server, oldest first (what a sparkline wants)."""
        with self.lock:
            rows = list(
                self.db.query(
                    "select * from telemetry where server = ? order by at desc limit ?",
                    [server, limit],
                )
            )
        samples = []
        for row in reversed(rows):
            row["up"] = bool(row["up"])
            samples.append(Sample(**row))
        return samples

    def count(self, server: str) -> int:
        with self.lock:
            return int(
                self.db.execute(
                    "select count(*) from telemetry where server = ?", [server]
                ).fetchone()[0]
            )


class TelemetryPoller:
    """Scrapes servers' /metrics through long-lived tunnels and stores one Sample per poll.

    One poller per console; `poll` runs in a worker thread, one server at a time per call.
    A server that does not answer gives an `up=False` sample, never an exception."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = TelemetryStore(engine.lab.journal.db, engine.lab.journal.lock)
        self.windows: dict[str, RateWindow] = {}
        self.forwards: dict[str, tuple[tuple[str, int], Forward]] = {}
        self._lock = threading.Lock()

    def _forward(self, spec: ServerSpec) -> Forward:
        key = (spec.host, spec.port)
        with self._lock:
            held = self.forwards.get(spec.name)
            if held and held[0] == key:
                return held[1]
            if held:
                held[1].close()
            fwd = self.engine.hosts.transport(spec.host).open_forward(spec.port)
            self.forwards[spec.name] = (key, fwd)
            return fwd

    def _drop(self, name: str) -> None:
        with self._lock:
            held = self.forwards.pop(name, None)
        if held:
            held[1].close()

    def poll(self, spec: ServerSpec) -> Sample:
        """One sample of one server, stored and returned."""
        try:
            fwd = self._forward(spec)
            with VllmClient(
                f"http://127.0.0.1:{fwd.local_port}", spec.api_model(), timeout=5.0
            ) as client:
                snap = client.metrics()
        except (TransportError, httpx.HTTPError, OSError, ValueError):
            self._drop(spec.name)
            self.windows.pop(spec.name, None)
            sample = Sample(server=spec.name, at=time.time(), up=False)
            self.store.add(sample)
            return sample
        sample = self.windows.setdefault(spec.name, RateWindow()).add(spec.name, snap)
        self._add_gpu(spec, sample)
        self.store.add(sample)
        return sample

    def _add_gpu(self, spec: ServerSpec, sample: Sample) -> None:
        """GPU util/memory from NVML on the host, for the GPUs this server uses."""
        facts = self.engine.lab.journal.observed("host", spec.host) or {}
        if not facts.get("gpus"):
            return
        transport = self.engine.hosts.transport(spec.host)
        source = resources.files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
        try:
            gpus = json.loads(transport.python_script(source, [], timeout=15).stdout or "[]")
        except (TransportError, ValueError):
            return
        mine = [g for g in gpus if spec.gpus is None or g["index"] in spec.gpus]
        if mine:
            sample.gpu_util_pct = sum(g["utilization_percent"] for g in mine) / len(mine)
            sample.gpu_mem_used_bytes = float(sum(g["memory_used_bytes"] for g in mine))

    def close(self) -> None:
        for name in list(self.forwards):
            self._drop(name)
