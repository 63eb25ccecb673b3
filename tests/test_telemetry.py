"""Telemetry maths and storage, from recorded Prometheus text (no server needed here; the
real-vLLM tests scrape a live one)."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlite_utils

from llmops.ops.kinds.server.client import parse_metrics
from llmops.ops.kinds.server.telemetry import RateWindow
from llmops.rollback.telemetry import Sample, TelemetryStore


def metrics_text(gen: float, prompt: float, ttft_counts: list[float], kv: float) -> str:
    bounds = ["0.01", "0.1", "1.0", "+Inf"]
    lines = [
        "# TYPE vllm:generation_tokens_total counter",
        f'vllm:generation_tokens_total{{engine="0",model_name="m"}} {gen}',
        "# TYPE vllm:prompt_tokens_total counter",
        f'vllm:prompt_tokens_total{{engine="0",model_name="m"}} {prompt}',
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f'vllm:kv_cache_usage_perc{{engine="0",model_name="m"}} {kv}',
        "# TYPE vllm:num_requests_running gauge",
        'vllm:num_requests_running{engine="0",model_name="m"} 2',
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ]
    for bound, count in zip(bounds, ttft_counts, strict=True):
        lines.append(
            f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="{bound}",'
            f'model_name="m"}} {count}'
        )
    lines.append(
        f'vllm:time_to_first_token_seconds_count{{engine="0",model_name="m"}} {ttft_counts[-1]}'
    )
    lines.append('vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.0')
    return "\n".join(lines) + "\n"


def test_rates_and_window_percentiles() -> None:
    window = RateWindow(window=60)
    first = parse_metrics(metrics_text(100, 50, [0, 10, 10, 10], 0.25))
    first.at = 1000.0
    s1 = window.add(first)
    assert s1.get("generation_tps") is None and s1["kv_cache_pct"] == 25.0 and s1["running"] == 2
    second = parse_metrics(metrics_text(300, 150, [0, 10, 30, 30], 0.5))
    second.at = 1010.0
    s2 = window.add(second)
    assert s2["generation_tps"] == 20.0 and s2["prompt_tps"] == 10.0
    # in the window, 20 new requests all took between 0.1 s and 1 s
    p50, p95 = s2["ttft_p50"], s2["ttft_p95"]
    assert p50 is not None and 0.1 <= p50 <= 1.0
    assert p95 is not None and p95 > p50


def test_store_is_bounded(tmp_path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "t.db"))
    store = TelemetryStore(db, keep_rows=5)
    for i in range(12):
        store.add(Sample("server/a", 10_000_000_000 + i, values={"generation_tps": float(i)}))
    store.add(Sample("server/b", 10_000_000_000, values={"generation_tps": 1.0}))
    assert store.count("server/a") == 5 and store.count("server/b") == 1
    assert [s.get("generation_tps") for s in store.recent("server/a", 3)] == [9.0, 10.0, 11.0]
    store.add(Sample("server/old", 1.0))  # a day old: expired at once
    assert store.count("server/old") == 0


def test_poller_scrapes_through_the_host_and_marks_down(tmp_path) -> None:
    """The poller's real path (lab, engine, host `local`, HTTP) against a metrics endpoint
    serving vLLM's text format; the real-vLLM tests scrape a live server."""
    import http.server
    import threading

    from labtools import local_spec

    from llmops.ops.kinds.server import ServerSpec
    from llmops.rollback.engine import Change, Engine
    from llmops.rollback.lab import Lab
    from llmops.rollback.telemetry import TelemetryPoller

    counts: dict[str, Any] = {"gen": 100.0, "ttft": [0, 5, 5, 5]}

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = metrics_text(counts["gen"], 10, counts["ttft"], 0.1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lab = Lab(tmp_path / "lab")
    engine = Engine(lab)
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    spec = ServerSpec(name="s1", host="local", model="org/m", port=port)
    poller = TelemetryPoller(engine)
    try:
        first = poller.poll(spec)
        counts["gen"], counts["ttft"] = 160.0, [0, 5, 15, 15]  # 10 new, each 0.1-1 s
        second = poller.poll(spec)
        assert first.up and second.up and second.get("kv_cache_pct") == 10.0
        tps, ttft_p95 = second.get("generation_tps"), second.get("ttft_p95")
        assert tps is not None and tps > 0
        assert first.get("ttft_p95") is None  # nothing new in the window yet
        assert ttft_p95 is not None and 0.1 < ttft_p95 <= 1.0
        server.shutdown()
        server.server_close()
        down = poller.poll(spec)
        assert down.up is False
        assert [s.up for s in poller.store.recent("server/s1", 10)] == [True, True, False]
    finally:
        poller.close()
        engine.close()
        lab.close()


def test_one_table_for_every_kind_keyed_by_ref(tmp_path) -> None:
    """Training runs, indexes and gateways store their series beside servers' (same table,
    same retention); the per-server table of before is a cache, so it is made afresh."""
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "t.db"))
    db.table("telemetry").create({"server": str, "at": float, "generation_tps": float})
    db.table("telemetry").insert({"server": "old", "at": 1.0, "generation_tps": 3.0})
    store = TelemetryStore(db, keep_rows=3)
    assert "ref" in db.table("telemetry").columns_dict and store.count("server/old") == 0
    at = 10_000_000_000
    for i in range(5):
        store.add(Sample("run/lora-7", at + i, values={"loss": 2.0 - i / 10, "tokens_per_s": 90}))
        store.add(Sample("index/docs", at + i, values={"objects": 1000.0 + i}))
    store.add(Sample("server/qwen", at, up=False))
    assert [store.count(r) for r in ("run/lora-7", "index/docs", "server/qwen")] == [3, 3, 1]
    assert [s.get("loss") for s in store.recent("run/lora-7")] == [1.8, 1.7, 1.6]
    latest = store.latest("index/docs")
    assert latest is not None and latest.get("objects") == 1004.0 and latest.ref == "index/docs"
    assert store.recent("server/qwen")[0].up is False
