"""The server kind's checklist, run after every action and rollback: is it really serving?

Kept apart from `apply` (which carries out plan steps) so each file stays one concept:
health, the model listed, a completion, a burst's p95, the spec's targets, a clean log,
memory — all timed.
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
from llmops.ops.kinds.server.bench import BenchClient
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.benchstats import figures, verdicts
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.flags import serves_classification, serves_embeddings
from llmops.ops.kinds.server.launch import reach_address, world_size
from llmops.ops.kinds.server.memory import memory_estimate
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.kinds.server.weights import model_config
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


DEFAULT_P95_LIMIT_MS = 10_000
"""Generous on purpose (8 tokens take ~0.2 s on two CPU cores): it catches a server that is
stuck or thrashing, not a slow one; a spec states its own bound with p95_limit_ms."""
MIN_RSS = 256 * 2**20
"""Less than a vLLM server's python, torch and engine alone hold: used when the weights'
size is unknown, and on GPU hosts, where the weights live in GPU memory."""


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
        fwd = t.forward(spec.port, reach_address(spec))
        local = fwd.__enter__()
    except TransportError as exc:
        return [Check("health", False, f"no tunnel to port {spec.port}: {exc}")]
    try:
        with client_at(local, spec) as client:
            checks = [
                _timed("health", lambda: (client.health(), f"GET /health on port {spec.port}")),
                _timed("model listed", lambda: _listed(client, spec)),
                *([_timed("classification", lambda: check_classification(client))]
                  if serves_classification(spec.args) else
                  [_timed("embedding", lambda: check_embedding(client))]
                  if serves_embeddings(spec.args) else
                  [_timed("completion", lambda: check_completion(client)),
                   _timed("burst p95", lambda: check_burst(client, spec)),
                   _timed("targets", lambda: check_targets(client, spec))]),
            ]
    finally:
        fwd.__exit__(None, None, None)
    checks.append(_timed("no ERROR in log", lambda: _log_clean(t, proc)))
    checks.append(_timed("memory", lambda: check_memory(t, spec, proc, facts)))
    return checks


def _listed(client: VllmClient, spec: ServerSpec) -> tuple[bool, str]:
    names = client.models()
    return spec.api_model() in names, ", ".join(names)


def check_completion(client: VllmClient) -> tuple[bool, str]:
    """Tokens were generated (usage.completion_tokens), not merely a 200 with empty text."""
    done = client.completion("Hello", 8)
    return done.tokens > 0, f"{done.tokens} tokens: {done.text!r}"


def check_embedding(client: VllmClient) -> tuple[bool, str]:
    """A pooling server: two texts give two vectors of one non-zero length, not all zeros."""
    vectors = client.embeddings(["Hello", "A rollback restores the index."])
    dims = {len(v) for v in vectors}
    ok = len(dims) == 1 and 0 not in dims and all(any(x != 0 for x in v) for v in vectors)
    return ok, f"{len(vectors)} vectors of {sorted(dims)} dimensions"


def check_classification(client: VllmClient) -> tuple[bool, str]:
    """A classifier: two texts give two rows of one number (>= 2) of probabilities that sum
    to 1, each with a label."""
    rows = client.classify(["Hello", "A rollback restores the index."])
    sizes = {len(probs) for _, probs in rows}
    ok = (len(sizes) == 1 and min(sizes) >= 2 and all(label for label, _ in rows)
          and all(abs(sum(probs) - 1.0) < 1e-3 for _, probs in rows))
    return ok, "; ".join(f"{label} {max(probs):.2f} of {len(probs)} classes"
                         for label, probs in rows)


def check_burst(client: VllmClient, spec: ServerSpec) -> tuple[bool, str]:
    """Eight answers, none failed, p95 within the spec's bound (or the generous default)."""
    burst = client.burst(8)
    limit = spec.p95_limit_ms or DEFAULT_P95_LIMIT_MS
    source = "p95_limit_ms" if spec.p95_limit_ms else "default bound; set p95_limit_ms"
    p95_ms = burst.p95 * 1000
    return (
        burst.errors == 0 and len(burst.latencies) > 0 and p95_ms <= limit,
        f"p50 {burst.p50 * 1000:.0f} ms, p95 {p95_ms:.0f} ms (<= {limit} ms, {source}), "
        f"{burst.errors} errors",
    )


TARGET_TRIES = 3
"""A target must be missed this many probes in a row to fail: one slow moment on a busy host
is noise, a server that cannot meet it misses every time."""
PROBE_TEXTS = ["Hello, how are you today?", "The operator asked for a short answer:",
               "Rollback restores the state the lab was in", "A list of three colours:"]


def probe_targets(client: VllmClient, spec: ServerSpec) -> tuple[bool, str]:
    """One probe: first-token p95 of 4 streamed requests sent one at a time (what one user
    waits: more load only makes it longer, so above the target is a breach), and output tok/s
    of 8 requests at once, 32 tokens each (a floor of what the server can make)."""
    one_at_a_time = BenchParams(requests=4, concurrency=1, output_len=8, warmup=0)
    outs, secs = BenchClient(client.base_url, client.model, one_at_a_time, PROBE_TEXTS).run()
    ttft = figures(outs, secs, {})
    eight = BenchParams(requests=8, concurrency=8, output_len=32, warmup=0)
    outs, secs = BenchClient(client.base_url, client.model, eight, PROBE_TEXTS).run()
    tput = figures(outs, secs, {})
    found = verdicts({**tput, "ttft_ms": ttft["ttft_ms"],
                      "completed": min(ttft["completed"], tput["completed"])},
                     spec.target_ttft_p95_ms, spec.target_output_tps)
    failed = ttft["failed"] + tput["failed"]
    words = "; ".join(("" if v.ok else "MISSED ") + v.words for v in found)
    return all(v.ok for v in found) and failed == 0, words + f"; {failed} failed"


def check_targets(client: VllmClient, spec: ServerSpec) -> tuple[bool, str]:
    """The spec's targets (target_ttft_p95_ms, target_output_tps) against a small probe,
    retried: passes on the first probe that meets both, fails when TARGET_TRIES in a row
    miss (a bench measures the real load; this says the server can meet them at all)."""
    detail = ""
    for attempt in range(1, TARGET_TRIES + 1):
        ok, detail = probe_targets(client, spec)
        if ok:
            return True, detail + (f" (probe {attempt})" if attempt > 1 else "")
    return False, f"{detail} ({TARGET_TRIES} probes missed)"


def _log_clean(t: Transport, proc: str) -> tuple[bool, str]:
    lines = procs.tail(t, proc, 2000)
    starts = [i for i, line in enumerate(lines) if line.startswith("--- start ")]
    since = lines[starts[-1] :] if starts else lines
    errors = [line for line in since if " ERROR " in line or line.startswith("ERROR")]
    return not errors, (errors[-1][:200] if errors else f"{len(since)} lines, none ERROR")


def check_memory(
    t: Transport, spec: ServerSpec, proc: str, facts: dict[str, Any]
) -> tuple[bool, str]:
    """Memory the server holds against its model's weights (from config.json): the session's
    RSS on a CPU host, NVML's used memory on each of its GPUs on a GPU host. A server that
    answers while holding less than its weights is not the one we started."""
    info = procs.status(t, proc)
    if not info.running or info.pid is None:
        return False, f"{proc} is {info.state}"
    done = t.run(["ps", "-o", "rss=", "--sid", str(_sid(t, info.pid))], timeout=30)
    rss = sum(int(x) for x in done.stdout.split() if x.isdigit()) * 1024
    est = memory_estimate(spec, facts, model_config(spec, t))
    if not has_gpus(facts):
        need, what = (est.weight_bytes, "its weights") if est else (MIN_RSS, "no config.json")
        return rss >= need, f"RSS {_gib(rss)} (at least {_gib(need)}: {what})"
    source = files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
    gpus = json.loads(t.python_script(source, [], timeout=30).stdout or "[]")
    wanted = (spec.gpus or [g["index"] for g in gpus])[: world_size(spec)]
    mine = [g for g in gpus if g["index"] in wanted]
    need = est.per_device_bytes if est else 1
    detail = f"RSS {_gib(rss)}; " + ", ".join(
        f"GPU {g['index']} {_gib(g['memory_used_bytes'])} used" for g in mine
    )
    detail += f" (at least {_gib(need)} each: its share of the weights)" if est else ""
    ok = len(mine) == len(wanted) and all(g["memory_used_bytes"] >= need for g in mine)
    return ok and rss >= MIN_RSS, detail


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _sid(t: Transport, pid: int) -> int:
    done = t.run(["ps", "-o", "sid=", "-p", str(pid)], timeout=30)
    return int(done.stdout.strip() or pid)


def checklist_absent(spec: ServerSpec, hosts: HostPool) -> list[Check]:
    t = hosts.transport(spec.host)
    mine = set(proc_names(spec.name))
    left = [p.name for p in procs.list_procs(t) if p.name in mine and p.running]
    return [
        Check("no process left", not left, ", ".join(left) or "none running"),
        Check(
            "port closed",
            not port_answers(t, spec.port, reach_address(spec)),
            f"port {spec.port}",
        ),
    ]
