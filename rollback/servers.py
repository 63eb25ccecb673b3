"""What the Servers view and `server list` show: spec, observed state and latest telemetry."""

from __future__ import annotations

from typing import Any

from llmops.ops.kinds.server import ServerKind, ServerSpec
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.transport import TransportError
from llmops.rollback.engine import Engine
from llmops.rollback.telemetry import TelemetryStore

SERVER = ServerKind()


def server_state(observed: dict[str, Any], answering: bool | None = None) -> str:
    """One word an operator reads at a glance: up, starting, crashed (rc), stopped, sleeping.
    `answering`: whether its port answered just now; a running vLLM that does not is still
    loading (None: not asked)."""
    procs = observed.get("procs") or {}
    serving = [p for n, p in procs.items() if not n.endswith("-live") and p.get("running")]
    if serving:
        if any(p.get("sleeping") for p in serving) and len(serving) == 1:
            return "sleeping"
        return "starting" if answering is False else "up"
    dead = [p for p in procs.values() if p.get("state") in ("exited", "reused")]
    if dead:
        codes = sorted({str(p.get("exit_code")) for p in dead if p.get("exit_code") is not None})
        return "crashed" + (f" (exit {', '.join(codes)})" if codes else "")
    return "stopped"


def healthy(engine: Engine, spec: ServerSpec) -> bool:
    """Whether /health answers on the server's port, through the tunnel."""
    try:
        with engine.hosts.transport(spec.host).forward(spec.port) as local:
            with VllmClient(f"http://127.0.0.1:{local}", spec.api_model(), timeout=5.0) as c:
                return c.health()
    except (TransportError, OSError):
        return False


def server_rows(engine: Engine, *, observe: bool = True) -> list[dict[str, Any]]:
    """Every server with its state (observed now, unless `observe` is off) and telemetry."""
    store = TelemetryStore(engine.lab.journal.db, engine.lab.journal.lock)
    rows = []
    for (kind, _name), spec in engine.lab.specs().items():
        if kind != "server" or not isinstance(spec, ServerSpec):
            continue
        row: dict[str, Any] = {
            "name": spec.name,
            "host": spec.host,
            "model": spec.model,
            "tp": spec.tp,
            "pp": spec.pp,
            "strategy": spec.strategy,
            "port": spec.port,
            "state": "?",
        }
        if observe:
            try:
                observed = SERVER.observe(spec, engine.hosts)
                answering = healthy(engine, spec) if server_state(observed) == "up" else None
                row["state"] = server_state(observed, answering)
            except TransportError as exc:
                row["state"] = f"unreachable: {exc}"[:80]
        latest = store.recent(spec.name, 1)
        if latest:
            s = latest[-1]
            row.update(
                tokens_per_s=s.generation_tps,
                e2e_p95_s=s.e2e_p95,
                ttft_p95_s=s.ttft_p95,
                kv_cache_pct=s.kv_cache_pct,
            )
        rows.append(row)
    return rows
