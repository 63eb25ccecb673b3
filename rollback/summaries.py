"""The read model every list and view shares, whatever the kind: each resource's row from its
kind's `Summarizes` capability (in ops), with its state observed now and its latest telemetry
sample. `llmops KIND list` prints these rows; the console's views read the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Spec, Summarizes
from llmops.ops.transport import TransportError
from llmops.rollback.kinds import KINDS, kind_of
from llmops.rollback.pending import PENDING_STATE
from llmops.rollback.telemetry import TelemetryStore, ref_of

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.engine import Engine
    from llmops.rollback.journal import Journal


def summarizer(kind: str) -> Summarizes:
    found = KINDS[kind]
    if not isinstance(found, Summarizes):
        raise TypeError(f"a {kind} has no summary")
    return found


def status(hosts: HostPool, spec: Spec, answering: bool | None = None) -> str:
    """The resource observed now, in a word (`answering`: did it answer its last poll)."""
    return summarizer(kind_of(spec).name).status(spec, hosts, answering)


def record_state(journal: Journal, spec: Spec, state: str) -> None:
    """What a status observed, kept in the journal's facts cache where the kind says so (a
    run's state and config: the GPU quota lets a run go whose trainer ended). Written only
    when it changed; a read-only console or CLI does not call it (`Engine.records`)."""
    said = getattr(kind_of(spec), "state_facts", None)
    found = said(spec, state) if callable(said) else None
    if not found:
        return
    kind = kind_of(spec).name
    old = {k: v for k, v in (journal.observed(kind, spec.name) or {}).items()
           if k != "observed_at"}
    if any(old.get(k) != v for k, v in found.items()):
        journal.record_observed(kind, spec.name, {**old, **found})


def summaries(engine: Engine, kind: str, *, observe: bool = True) -> list[dict[str, Any]]:
    """Every resource of a kind as its row: state observed now (unless `observe` is off; an
    unreachable host says so in its own row) and the latest telemetry."""
    summary = summarizer(kind)
    store = TelemetryStore(engine.lab.journal.db, engine.lab.journal.lock)
    rows = []
    pending = {p.ref: p for p in engine.pending.all() if p.kind == kind}
    specs = engine.lab.specs()
    for (spec_kind, name), spec in specs.items():
        if spec_kind != kind:
            continue
        state = "?"
        if (kind, name) in pending:
            state = PENDING_STATE  # what a failed revert left there: not known until reached
        elif observe:
            try:
                state = summary.status(spec, engine.hosts)
                if engine.records:
                    record_state(engine.lab.journal, spec, state)
            except TransportError as exc:
                state = f"unreachable: {exc}"[:80]
        row = summary.summary(spec, state, store.latest(ref_of(kind, name)))
        if kind == "server":
            row.update(bench_fields(engine.last_bench(name)))
        rows.append(row)
    gone = [p for ref, p in pending.items() if ref not in specs]  # no spec, maybe still running
    return rows + [summary.summary(p.spec, PENDING_STATE, None) for p in gone]


# -- benches: one bench's figures in words, two side by side, the status payload ----------
BENCH_FIGURES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("completed", ("figures", "completed"), "{:.0f}"),
    ("failed", ("figures", "failed"), "{:.0f}"),
    ("duration s", ("figures", "duration_s"), "{:.2f}"),
    ("requests/s", ("figures", "request_throughput"), "{:.2f}"),
    ("goodput req/s", ("figures", "request_goodput"), "{:.2f}"),
    ("input tok/s", ("figures", "input_throughput"), "{:.1f}"),
    ("output tok/s", ("figures", "output_throughput"), "{:.1f}"),
    *((f"{label} {stat} ms", ("figures", f"{metric}_ms", stat), "{:.1f}")
      for metric, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"),
                            ("e2el", "e2e"))
      for stat in ("mean", "median", "p95", "p99")),
    ("cost/1M input", ("cost", "per_1m_input"), "{:.4f}"),
    ("cost/1M output", ("cost", "per_1m_output"), "{:.4f}"),
)


def dig(row: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def fmt(value: Any, spec: str = "{}") -> str:
    return "-" if value is None else spec.format(value)


def bench_side_by_side(before: dict[str, Any] | None,
                       after: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """(figure, before, after, change) for every figure of two benches, and their verdicts."""
    out = []
    for label, path, spec in BENCH_FIGURES:
        a, b = dig(before, path), dig(after, path)
        change = (f"{(b - a) / a * 100:+.1f}%" if isinstance(a, int | float) and a
                  and isinstance(b, int | float) else "")
        out.append((label, fmt(a, spec), fmt(b, spec), change))
    for i, name in enumerate(("first-token p95 target", "output tok/s target")):
        a, b = dig(before, ("verdicts",)), dig(after, ("verdicts",))
        out.append((name, verdict_cell(a[i] if a else None), verdict_cell(b[i] if b else None),
                    ""))
    out.append(("verdict", fmt(dig(before, ("verdict",))), fmt(dig(after, ("verdict",))), ""))
    return out


def verdict_cell(v: dict[str, Any] | None) -> str:
    if not v:
        return "-"
    return f"{'pass' if v['ok'] else 'FAIL'}: {v['words']}"


def bench_fields(bench: dict[str, Any] | None) -> dict[str, Any]:
    """What a server's row and `status` say of its last bench."""
    if bench is None:
        return {"last_verdict": None, "cost_per_1m_output": None}
    return {"last_verdict": bench["verdict"],
            "cost_per_1m_output": dig(bench, ("cost", "per_1m_output")),
            "cost_per_1m_input": dig(bench, ("cost", "per_1m_input")),
            "bench_at": bench["at"]}


def server_status(engine: Engine, *, observe: bool = True) -> list[dict[str, Any]]:
    """Per server, the payload an operator pastes into a report: state, latency p95 and
    throughput (last bench, and the live telemetry), cost per 1M tokens, target verdicts,
    the last eval's accuracy (where the eval work provides `last_eval`)."""
    last_eval = getattr(engine, "last_eval", None)
    out = []
    for row in summaries(engine, "server", observe=observe):
        bench = engine.last_bench(row["name"])
        evaluated = last_eval(row["name"]) if callable(last_eval) else None
        spec = engine.lab.read_spec("server", row["name"])
        out.append({
            "name": row["name"], "host": row["host"], "model": row["model"],
            "state": row["state"],
            "targets": {"ttft_p95_ms": getattr(spec, "target_ttft_p95_ms", None),
                        "output_tps": getattr(spec, "target_output_tps", None)},
            "bench": None if bench is None else {
                "at": bench["at"], "spec_commit": bench["spec_commit"],
                "ttft_p95_ms": dig(bench, ("figures", "ttft_ms", "p95")),
                "e2e_p95_ms": dig(bench, ("figures", "e2el_ms", "p95")),
                "output_tok_s": dig(bench, ("figures", "output_throughput")),
                "input_tok_s": dig(bench, ("figures", "input_throughput")),
                "requests_per_s": dig(bench, ("figures", "request_throughput")),
                "goodput_per_s": dig(bench, ("figures", "request_goodput")),
                "failed": dig(bench, ("figures", "failed"))},
            "latency_p95_ms": dig(bench, ("figures", "ttft_ms", "p95")),
            "throughput_tok_s": dig(bench, ("figures", "output_throughput")),
            "cost_per_1m_output": dig(bench, ("cost", "per_1m_output")),
            "cost_per_1m_input": dig(bench, ("cost", "per_1m_input")),
            "verdict": bench["verdict"] if bench else None,
            "verdicts": {v["target"]: v["ok"] for v in bench["verdicts"]} if bench else {},
            "live": {"ttft_p95_s": row.get("ttft_p95_s"), "e2e_p95_s": row.get("e2e_p95_s"),
                     "tokens_per_s": row.get("tokens_per_s")},
            "eval": evaluated,
            "eval_accuracy": (evaluated or {}).get("accuracy") if isinstance(evaluated, dict)
            else None,
        })
    return out
