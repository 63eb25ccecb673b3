"""The server kind's checklist, run after every action and rollback: is it really serving?

Kept apart from `apply` (which carries out plan steps) so each file stays one concept:
health, the model listed, a completion, a burst's p95, a clean log, memory — all timed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Check
from llmops.ops.kinds.hoststate import has_gpus, host_facts, port_answers
from llmops.ops.kinds.server.apply import client_at, live_proc, proc_names
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    began = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(name, ok, detail, round(time.monotonic() - began, 3))


def checklist(spec: ServerSpec, hosts: HostPool) -> list[Check]:
    """Health, model listed, a completion, a burst's p95, clean log, memory: all timed."""
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    proc = live_proc(spec, t, facts)
    try:
        fwd = t.forward(spec.port)
        local = fwd.__enter__()
    except TransportError as exc:
        return [Check("health", False, f"no tunnel to port {spec.port}: {exc}")]
    try:
        with client_at(local, spec) as client:
            checks = [
                _timed("health", lambda: (client.health(), f"GET /health on port {spec.port}")),
                _timed("model listed", lambda: _listed(client, spec)),
                _timed("completion", lambda: (True, repr(client.completion("Hello", 8).text))),
                _timed("burst p95", lambda: _burst(client)),
            ]
    finally:
        fwd.__exit__(None, None, None)
    checks.append(_timed("no ERROR in log", lambda: _log_clean(t, proc)))
    checks.append(_timed("memory", lambda: _memory(t, spec, proc, facts)))
    return checks


def _listed(client: VllmClient, spec: ServerSpec) -> tuple[bool, str]:
    names = client.models()
    return spec.api_model() in names, ", ".join(names)


def _burst(client: VllmClient) -> tuple[bool, str]:
    burst = client.burst(8)
    return (
        burst.errors == 0,
        f"p50 {burst.p50 * 1000:.0f} ms, p95 {burst.p95 * 1000:.0f} ms, {burst.errors} errors",
    )


def _log_clean(t: Transport, proc: str) -> tuple[bool, str]:
    lines = procs.tail(t, proc, 2000)
    starts = [i for i, line in enumerate(lines) if line.startswith("--- start ")]
    since = lines[starts[-1] :] if starts else lines
    errors = [line for line in since if " ERROR " in line or line.startswith("ERROR")]
    return not errors, (errors[-1][:200] if errors else f"{len(since)} lines, none ERROR")


def _memory(t: Transport, spec: ServerSpec, proc: str, facts: dict[str, Any]) -> tuple[bool, str]:
    """RSS of the server's whole session; on GPU hosts, memory in use (NVML) on each GPU it
    was given: a server that answers while holding nothing there is not the one we started."""
    info = procs.status(t, proc)
    if not info.running or info.pid is None:
        return False, f"{proc} is {info.state}"
    done = t.run(["ps", "-o", "rss=", "--sid", str(_sid(t, info.pid))], timeout=30)
    rss = sum(int(x) for x in done.stdout.split() if x.isdigit()) * 1024
    detail = f"RSS {rss / 2**30:.2f} GiB"
    if not has_gpus(facts):
        return rss > 0, detail
    source = files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
    gpus = json.loads(t.python_script(source, [], timeout=30).stdout or "[]")
    wanted = spec.gpus if spec.gpus is not None else [g["index"] for g in gpus]
    mine = [g for g in gpus if g["index"] in wanted]
    detail += "; " + ", ".join(
        f"GPU {g['index']} {g['memory_used_bytes'] / 2**30:.1f} GiB used" for g in mine
    )
    return rss > 0 and len(mine) == len(wanted) and all(
        g["memory_used_bytes"] for g in mine
    ), detail


def _sid(t: Transport, pid: int) -> int:
    done = t.run(["ps", "-o", "sid=", "-p", str(pid)], timeout=30)
    return int(done.stdout.strip() or pid)


def checklist_absent(spec: ServerSpec, hosts: HostPool) -> list[Check]:
    t = hosts.transport(spec.host)
    mine = set(proc_names(spec.name))
    left = [p.name for p in procs.list_procs(t) if p.name in mine and p.running]
    return [
        Check("no process left", not left, ", ".join(left) or "none running"),
        Check("port closed", not port_answers(t, spec.port), f"port {spec.port}"),
    ]
