"""An index's progress records for the console: its recall history (every eval kept in its
record on the host, oldest first, numbered `n`) for a chart, and its ingest worker's newest
counts (`{"ingest": ...}`, documents and chunks done, their rates, whether it runs) for a
progress bar. The host's record is read at most every `EVALS_EVERY_S` per index: the
console polls progress every two seconds and evals change only when one is run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.index.evaluate import eval_history
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.worker import files_for, latest

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

EVALS_EVERY_S = 10.0


def eval_points(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pure: evals (newest first, as kept) as chart points, oldest first."""
    return [{"n": n, "recall": e.get("recall"), "mrr": e.get("mrr"), "k": e.get("k"),
             "alpha": e.get("alpha"), "commit": str(e.get("commit") or "")[:12],
             "chunking": e.get("chunking"),
             **({"rerank": e["rerank"], "rerank_recall": e.get("rerank_recall"),
                 "rerank_mrr": e.get("rerank_mrr")} if e.get("rerank") else {})}
            for n, e in enumerate(reversed(history), 1)]


class ProgressReader:
    """Evals cached per index (by name and spec), the worker's file read every time."""

    def __init__(self) -> None:
        self._evals: dict[str, tuple[float, IndexSpec, list[dict[str, Any]]]] = {}

    def points(self, spec: IndexSpec, hosts: HostPool) -> list[dict[str, Any]]:
        cached = self._evals.get(spec.name)
        if cached is None or cached[1] != spec or time.monotonic() - cached[0] > EVALS_EVERY_S:
            cached = (time.monotonic(), spec, eval_points(eval_history(spec, hosts)))
            self._evals[spec.name] = cached
        found = list(cached[2])
        ingest = latest(files_for(hosts, spec.name))
        if ingest is not None:
            found.append({"ingest": ingest})
        return found

    def forget(self, name: str) -> None:
        """Read the evals again next time (one was just run)."""
        self._evals.pop(name, None)
