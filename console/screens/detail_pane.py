"""The pane under a resource table: the selected resource now (its stats), over the last
minutes (sparklines of its telemetry), what is being done to it, and when it is not serving,
why (its last log lines) and the way back (ctrl+z, restart). A kind doing long work in steps
adds a progress bar and a chart of its progress records, its report and its log tail, where
its presenter declares them."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from llmops.console.screens.presenter import Presenter
from llmops.console.widgets.loss_chart import LossChart
from llmops.console.widgets.render import num
from llmops.ops.kinds.base import HasReport, Sample


def spark_values(samples: list[Sample], metric: str) -> list[float]:
    """A series for a Sparkline: a sample without the value (resource down) counts as 0; a
    series with nothing in it is empty (a flat line of zeros would draw as full bars)."""
    values = [s.get(metric) or 0.0 for s in samples]
    return values if any(values) else []


def problem_text(name: str, state: str, reason: str | None, log_tail: list[str],
                 last_action: tuple[int, str] | None, restart_key: str | None) -> Text:
    """Why the resource is not serving, its last log lines, and the way back (the keys are
    None in read-only mode, where neither works)."""
    text = Text()
    text.append(f"{name} is {state}" + (f": {reason}" if reason else "") + "\n", style="bold red")
    ways = []
    if last_action:
        action_id, summary = last_action
        ways.append(f"ctrl+z rolls back the last action on it: {action_id} ({summary})")
    if restart_key:
        ways.append(f"{restart_key} restarts it as it is")
    if ways:
        text.append("; ".join(ways) + ".\n", style="bold yellow")
    if log_tail:
        text.append("last log lines:\n", style="grey50")
        for line in log_tail[-12:]:
            text.append(f"  {line[:200]}\n")
    return text


class ResourceDetail(Vertical):
    """Redrawn by its view (on the event loop) with what the view knows of the selected row."""

    def __init__(self, presenter: Presenter, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="detail-pane")
        self.sparks = presenter.sparks
        self.chart = presenter.chart
        self.has_report = isinstance(presenter.kind_impl, HasReport)
        self.tail_lines = presenter.tail_lines

    def compose(self) -> ComposeResult:
        yield Label("", id="detail-title")
        yield Static("", id="detail-stats")
        for spark in self.sparks:
            with Horizontal(classes="spark-row"):
                yield Label(spark.label, classes="spark-label")
                yield Sparkline([], id=f"spark-{spark.key}", summary_function=max)
                yield Label("", id=f"spark-{spark.key}-now", classes="spark-now")
        if self.chart is not None:
            with Horizontal(id="detail-bar-row"):
                yield ProgressBar(id="detail-bar", show_eta=False)
                yield Label("", id="detail-bar-words")
        if self.chart is not None or self.has_report or self.tail_lines:
            with Horizontal(id="detail-work"):
                if self.chart is not None:
                    yield LossChart(self.chart, id="detail-chart")
                with Vertical(id="detail-side"):
                    if self.has_report:
                        yield Static("", id="detail-report")
                    if self.tail_lines:
                        yield Static("", id="detail-tail")
        yield Static("", id="detail-notes")
        yield Label("", id="detail-progress")
        yield Static("", id="detail-crash")

    def show(self, title: Text, stats: Text | None, samples: list[Sample], progress: str | None,
             problem: Text | None) -> None:
        self.query_one("#detail-title", Label).update(title)
        self.query_one("#detail-stats", Static).update(stats or "")
        self.query_one("#detail-stats", Static).display = stats is not None
        for spark in self.sparks:
            self.query_one(f"#spark-{spark.key}", Sparkline).data = spark_values(
                samples, spark.metric)
            latest = samples[-1].get(spark.metric) if samples else None
            self.query_one(f"#spark-{spark.key}-now", Label).update(num(latest, "{:.2f}"))
        self.query_one("#detail-progress", Label).update(Text(progress or ""))
        self.query_one("#detail-progress", Label).display = bool(progress)
        problem_box = self.query_one("#detail-crash", Static)
        problem_box.update(problem or "")
        problem_box.display = problem is not None

    def show_work(self, bar: tuple[float, float, Text] | None, points: list[dict[str, Any]],
                  report: Text | None, tail: list[str], notes: Text | None = None) -> None:
        """The long work's part: progress bar, chart, report and log tail (where composed),
        and the presenter's own notes."""
        self.query_one("#detail-notes", Static).update(notes or "")
        self.query_one("#detail-notes", Static).display = notes is not None
        if self.chart is not None:
            row = self.query_one("#detail-bar-row")
            row.display = bar is not None
            if bar is not None:
                done, total, words = bar
                self.query_one("#detail-bar", ProgressBar).update(total=total, progress=done)
                self.query_one("#detail-bar-words", Label).update(words)
            self.query_one(LossChart).plot(points)
        if self.has_report:
            self.query_one("#detail-report", Static).update(report or "")
            self.query_one("#detail-report", Static).display = report is not None
        if self.tail_lines:
            text = Text("log tail\n", style="grey50")
            for line in tail[-self.tail_lines:]:
                text.append(f"{line[:300]}\n", style="default")
            self.query_one("#detail-tail", Static).update(text if tail else "")
            self.query_one("#detail-tail", Static).display = bool(tail)
