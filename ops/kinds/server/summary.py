"""The server in a word and a row (Summarizes): what `server list` prints and the Servers view
reads, from the processes observed on the host, whether the port answers, and the latest
telemetry sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Sample
from llmops.ops.kinds.cluster import serving
from llmops.ops.kinds.server.apply import client_at, observe
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.observed import ServerObserved
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def server_state(observed: ServerObserved, answering: bool | None = None) -> str:
    """One word an operator reads at a glance: up, starting, crashed (rc), stopped, sleeping
    (`status` adds degraded for a server across a cluster).
    `answering`: whether its port answered just now; a running vLLM that does not is still
    loading (None: not asked)."""
    procs = observed.procs
    serving = [p for n, p in procs.items() if not n.endswith("-live") and p.running]
    if serving:
        if any(p.sleeping for p in serving) and len(serving) == 1:
            return "sleeping"
        return "starting" if answering is False else "up"
    dead = [p for p in procs.values() if p.state in ("exited", "reused")]
    if dead:
        codes = sorted({str(p.exit_code) for p in dead if p.exit_code is not None})
        return "crashed" + (f" (exit {', '.join(codes)})" if codes else "")
    return "stopped"


def healthy(spec: ServerSpec, hosts: HostPool) -> bool:
    """Whether /health answers on the server's port, through the tunnel."""
    try:
        with hosts.transport(spec.host).forward(spec.port, reach_address(spec)) as local:
            with client_at(local, spec, timeout=5.0) as client:
                return client.health()
    except (TransportError, OSError):
        return False


def status(spec: ServerSpec, hosts: HostPool, answering: bool | None = None) -> str:
    """Observed now; a server that runs is asked for /health unless `answering` says. A
    server across a cluster whose node dropped is `degraded (node ... down)`: its ranks there
    are gone even while the head still answers (a crashed one says which node too)."""
    observed = observe(spec, hosts)
    if answering is None and server_state(observed) == "up":
        answering = healthy(spec, hosts)
    state = server_state(observed, answering)
    if spec.cluster and state != "stopped":
        dropped = serving.dropped_nodes(spec.cluster, hosts)
        if dropped:
            nodes = f"node {', '.join(dropped)} down"
            return f"degraded ({nodes})" if state in ("up", "starting") else f"{state} · {nodes}"
    return state


def summary(spec: ServerSpec, state: str, latest: Sample | None) -> dict[str, Any]:
    """The row: the spec's main fields, the state, and the latest telemetry (when any)."""
    row: dict[str, Any] = {
        "name": spec.name,
        "host": spec.host,
        "model": spec.model,
        "tp": spec.tp,
        "pp": spec.pp,
        "strategy": spec.strategy,
        "port": spec.port,
        "state": state,
    }
    if latest is not None:
        row.update(
            tokens_per_s=latest.get("generation_tps"),
            e2e_p95_s=latest.get("e2e_p95"),
            ttft_p95_s=latest.get("ttft_p95"),
            kv_cache_pct=latest.get("kv_cache_pct"),
        )
    return row
