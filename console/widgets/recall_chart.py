"""An index's recall history as a small chart, and its ingest's progress in words.

The chart is a `LossChart` (textual-plotext, redrawn only when a poll brings new points)
declared here: recall@k and MRR of every eval kept for the index (and, reranked, the same
after the rerank server reordered the hits), against the eval's number,
oldest first (`ops/kinds/index/progress.py` makes the points). `ingest_bar` is the pure part
of the progress bar: (chunks done, chunks total, words with documents and both rates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from llmops.console.widgets.loss_chart import Chart, LossChart, Series

RECALL_CHART = Chart(
    x="n",
    series=(Series("recall", "recall@k", "green"), Series("mrr", "MRR", "cyan"),
            Series("rerank_recall", "reranked recall@k", "magenta"),
            Series("rerank_mrr", "reranked MRR", "yellow")),
    title="retrieval per eval",
    y_label="",
)


class RecallChart(LossChart):
    """recall@k and MRR per eval (the detail pane draws the same through its chart)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(RECALL_CHART, id=id)


def ingest_of(points: Sequence[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The ingest worker's newest counts among the progress points, if any."""
    for point in reversed(points or ()):
        if isinstance(point.get("ingest"), dict):
            return dict(point["ingest"])
    return None


def evals_of(points: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [p for p in points or () if "n" in p]


def ingest_words(entry: dict[str, Any]) -> Text:
    """`documents 3/30 · chunks 120/300 · 40.1 chunks/s · 1.20 docs/s`, and whether it runs."""
    words = Text()
    for label, done, total in (("documents", "docs_done", "docs_total"),
                               ("chunks", "chunks_done", "chunks_total")):
        words.append(f" {label} ", style="grey50")
        words.append(f"{entry.get(done, 0)}/{entry.get(total, 0)}", style="bold")
    words.append("  ")
    words.append(f"{float(entry.get('chunks_per_s') or 0):.1f}", style="bold")
    words.append(" chunks/s  ", style="grey50")
    words.append(f"{float(entry.get('docs_per_s') or 0):.2f}", style="bold")
    words.append(" docs/s", style="grey50")
    complete = entry.get("chunks_done") == entry.get("chunks_total")
    if entry.get("running"):
        words.append("  ingesting", style="bold cyan")
    else:
        words.append("  done" if complete else "  stopped (the next ingest resumes it)",
                     style="green" if complete else "bold yellow")
    return words


def ingest_bar(points: Sequence[dict[str, Any]] | None) -> tuple[float, float, Text] | None:
    """(done, total, words) for a progress bar, None when the index never ingested here."""
    entry = ingest_of(points)
    if entry is None:
        return None
    total = float(entry.get("chunks_total") or 0)
    return float(entry.get("chunks_done") or 0), max(total, 1.0), ingest_words(entry)
