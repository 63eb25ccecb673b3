"""Quality beside speed: eval results stored per server and spec commit (issue 12), and the
line that judges a change on cost, speed and accuracy against the eval of the commit before.

A mixin of the Engine. The `evals` table in lab.db is a record beside the journal (like
`telemetry`): results, not actions. Bench figures are read from the `benches` table when the
bench work (rollback/benches.py) has written one for the same server and spec commit; nothing
here imports its code."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.server.evaluate import FORMAT, DatasetError, EvalError, eval_server
from llmops.ops.kinds.server.evaluate import parse_dataset as parse_eval_dataset
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.lab import Lab, spec_path

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

__all__ = ["EvalError", "Evals", "bench_figures", "compare_line", "parse_eval_dataset"]

COLUMNS: dict[str, type] = {
    "id": int, "server": str, "commit": str, "at": str, "dataset": str, "dataset_sha": str,
    "model": str, "items": int, "judged": int, "correct": int, "accuracy": float,
    "perplexity": float, "errors": int, "seconds": float, "data": str,
}
def _opened(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


def bench_figures(row: dict[str, Any] | None) -> dict[str, float]:
    """TTFT p95 (ms), output tokens/s and cost per 1M output tokens from a `benches` row as
    the bench work keeps it (`figures`: `ttft_ms.p95`, `output_throughput`; `cost`:
    `per_1m_output`), where present and positive (pure)."""
    if not row:
        return {}
    figures, cost = _opened(row.get("figures")), _opened(row.get("cost"))
    found = {
        "ttft_p95_ms": _number(_opened(figures.get("ttft_ms")).get("p95")),
        "output_tps": _number(figures.get("output_throughput")),
        "cost_per_m": _number(cost.get("per_1m_output")),
    }
    return {k: v for k, v in found.items() if v is not None}


def _change(now: float, before: float) -> str:
    return f"{(now - before) / before * 100:+.0f}%"


def compare_line(now: dict[str, Any], before: dict[str, Any] | None,
                 bench_now: dict[str, float] | None = None,
                 bench_before: dict[str, float] | None = None) -> str:
    """The seed's line for a change: "cost -73%, accuracy 96% of before, p95 TTFT +12%" —
    each figure where both sides have it (pure)."""
    acc = now.get("accuracy")
    if before is None:
        parts = ["first eval of this dataset on this server"]
        if acc is not None:
            parts.append(f"accuracy {acc * 100:.0f}% ({now.get('correct')}/{now.get('judged')})")
        if now.get("perplexity") is not None:
            parts.append(f"perplexity {now['perplexity']:.2f}")
        return ", ".join(parts)
    parts = []
    bnow, bbefore = bench_now or {}, bench_before or {}
    if bnow.get("cost_per_m") is not None and bbefore.get("cost_per_m"):
        parts.append(f"cost {_change(bnow['cost_per_m'], bbefore['cost_per_m'])}")
    prev = before.get("accuracy")
    if acc is not None and prev:
        parts.append(f"accuracy {acc / prev * 100:.0f}% of before")
    elif acc is not None and prev is not None:
        parts.append(f"accuracy {acc * 100:.0f}% (before 0%)")
    if now.get("perplexity") and before.get("perplexity"):
        parts.append(f"perplexity {_change(now['perplexity'], before['perplexity'])}")
    if bnow.get("ttft_p95_ms") is not None and bbefore.get("ttft_p95_ms"):
        parts.append(f"p95 TTFT {_change(bnow['ttft_p95_ms'], bbefore['ttft_p95_ms'])}")
    if bnow.get("output_tps") is not None and bbefore.get("output_tps"):
        parts.append(f"output tok/s {_change(bnow['output_tps'], bbefore['output_tps'])}")
    return ", ".join(parts) or "nothing to compare"


def _row_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "data"}
    out.update(json.loads(row.get("data") or "{}"))
    return out


class EvalStore:
    """The `evals` table: one row per eval, by server and the spec commit it ran against."""

    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock

    def _ensure(self) -> None:
        if "evals" not in self.db.table_names():
            self.db.table("evals").create(COLUMNS, pk="id")
            self.db.table("evals").create_index(["server", "id"])

    def add(self, row: dict[str, Any]) -> int:
        with self.lock, self.db.conn:
            self._ensure()
            return int(self.db.table("evals").insert(row).last_pk or 0)

    def rows(self, where: str, args: list[Any], limit: int = 1) -> list[dict[str, Any]]:
        with self.lock:
            if "evals" not in self.db.table_names():
                return []
            cursor = self.db.execute(
                f"select * from evals where {where} order by id desc limit ?", [*args, limit])
            names = [c[0] for c in cursor.description]
            return [_row_out(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]

    def bench_row(self, server: str, commit: str) -> dict[str, Any] | None:
        """The newest bench of this server at this commit, if the bench work keeps any."""
        with self.lock:
            if "benches" not in self.db.table_names():
                return None
            columns = self.db.table("benches").columns_dict
            key = next((c for c in ("spec_commit", "commit") if c in columns), None)
            if "server" not in columns or key is None:
                return None
            cursor = self.db.execute(
                f"select * from benches where server = ? and \"{key}\" = ? order by rowid desc"
                " limit 1", [server, commit])
            found = cursor.fetchone()
            names = [c[0] for c in cursor.description]
        return dict(zip(names, found, strict=True)) if found else None


class Evals:
    """Eval runs on a server, stored per (server, commit) (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool

    @property
    def eval_store(self) -> EvalStore:
        return EvalStore(self.lab.journal.db, self.lab.journal.lock)

    def spec_commit(self, kind: str, name: str) -> str:
        """The commit that last changed the resource's spec file (what an eval is stored by:
        actions on other resources do not make a new version of this one)."""
        found = next(iter(self.lab.repo.iter_commits(paths=spec_path(kind, name),
                                                       max_count=1)), None)
        return found.hexsha if found is not None else self.lab.head()

    def run_eval(self, name: str, dataset: str, *, source: str = "", store: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Score server `name` on a JSONL dataset (its text; `source` names the file), store
        the result by the server's spec commit unless `store` is off, and return it with the
        eval of the commit before on the same dataset and the line comparing them. A bad
        dataset is a SpecError (field `dataset`, its line and field) before anything runs;
        a server that does not answer is an EvalError; neither writes anything."""
        spec = self.lab.read_spec("server", name)
        if not isinstance(spec, ServerSpec):
            raise SpecError("name", f"there is no server named {name}",
                            "see `llmops server list`")
        try:
            items = parse_eval_dataset(dataset)
        except DatasetError as exc:
            raise SpecError("dataset", f"{source or 'the dataset'}: {exc}", FORMAT) from exc
        commit = self.spec_commit("server", name)
        result = eval_server(spec, self.hosts, items, progress)
        summary = result.summary()
        sha = hashlib.sha256(dataset.encode()).hexdigest()
        row: dict[str, Any] = {
            "server": name, "commit": commit,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dataset": source, "dataset_sha": sha, "model": spec.model,
            "items": summary["items"], "judged": summary["judged"],
            "correct": summary["correct"], "accuracy": summary["accuracy"],
            "perplexity": summary["perplexity"], "errors": summary["errors"],
            "seconds": summary["seconds"],
            "data": json.dumps({"by_scorer": summary["by_scorer"],
                                "perplexity_tokens": summary["perplexity_tokens"],
                                "results": result.rows()}),
        }
        store_ = self.eval_store
        if store:
            row["id"] = store_.add(row)
        before = next(iter(store_.rows(
            "server = ? and dataset_sha = ? and \"commit\" != ?" + (" and id < ?" if store else ""),
            [name, sha, commit, *([row["id"]] if store else [])])), None)
        return self._judged(_row_out(row), before)

    def _judged(self, now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
        store = self.eval_store
        bench_now = bench_figures(store.bench_row(now["server"], now["commit"]))
        bench_before = bench_figures(store.bench_row(before["server"], before["commit"])
                                     ) if before else {}
        slim = {k: v for k, v in (before or {}).items() if k != "results"} or None
        return {**now, "bench": bench_now or None, "before": slim,
                "before_bench": bench_before or None,
                "line": compare_line(now, before, bench_now, bench_before)}

    def evals(self, server: str, limit: int = 20) -> list[dict[str, Any]]:
        """The server's evals, newest first, without their per-item results."""
        rows = self.eval_store.rows("server = ?", [server], limit)
        return [{k: v for k, v in r.items() if k != "results"} for r in rows]

    def last_eval(self, server: str) -> dict[str, Any] | None:
        """The newest eval of the server, judged against the one before it on the same
        dataset (accuracy, perplexity, the line), without per-item results: what
        `status --json` shows beside speed and cost."""
        found = self.eval_store.rows("server = ?", [server], 1)
        if not found:
            return None
        now = found[0]
        before = next(iter(self.eval_store.rows(
            "server = ? and dataset_sha = ? and \"commit\" != ? and id < ?",
            [server, now["dataset_sha"], now["commit"], now["id"]])), None)
        judged = self._judged(now, before)
        judged.pop("results", None)
        return judged
