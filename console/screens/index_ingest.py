"""An index's ingest screen: Enter reads its source folder again and ingests what changed
(`Engine.index_ingest`: a journalled action with the checklist after it) in a thread worker,
while a progress bar follows the ingest worker's counts (documents and chunks done, and per
second) and the engine's progress lines show under it; the recall history is drawn below.
The ingest itself runs in a detached worker: Escape (or a console that dies) leaves it going,
and the index's row keeps its progress bar. Not offered read-only (it is an action)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, ProgressBar, Static

from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.console.widgets.recall_chart import RecallChart, evals_of, ingest_bar
from llmops.ops.kinds.index.spec import IndexSpec

POLL_S = 0.5


@dataclass
class IngestProgressed(Message):
    """The index's progress points, read in a worker (None: they could not be read)."""

    points: list[dict[str, Any]] | None


@dataclass
class IngestLine(Message):
    """One of the ingest action's progress lines (from the engine's listener)."""

    line: str


@dataclass
class IngestEnded(Message):
    """The ingest action's outcome: its id and status, failed checks, or why it failed."""

    action_id: int | None
    status: str
    error: str | None
    failed_checks: list[str]
    seconds: float


class IndexIngestScreen(Screen[None]):
    """Ingest one index now and watch it go."""

    CSS_PATH = "index_ingest.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "start", "Ingest", id="ingest.start",
                tooltip="Read the source folder again and ingest what changed (an action)"),
        Binding("escape", "close", "Back", id="ingest.close",
                tooltip="Back to the list (an ingest under way goes on)"),
    ]

    def __init__(self, context: ViewContext, spec: IndexSpec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        self.running = False
        self.ended: IngestEnded | None = None
        self.points: list[dict[str, Any]] = []
        self._unsubscribe: Any = None

    def compose(self) -> ComposeResult:
        spec = self.spec
        yield Label(Text.assemble(("ingest index ", "bold"), (spec.name, "bold"),
                                  f" · {spec.collection} on {spec.host}"), classes="screen-title")
        about = Text.assemble(
            ("source   ", "grey50"), spec.source or "(none: nothing to ingest)",
            ("\nchunks   ", "grey50"), f"{spec.chunk_size} characters, {spec.chunk_overlap} "
            "shared; ids by content, so what is in already is skipped",
            ("\nvectors  ", "grey50"), f"server {spec.embed_server}, {spec.batch_size} a batch"
            + (f" (Weaviate's {spec.vectorizer} calls it)" if spec.vectorizer else ""),
            ("\n\nEnter ingests now (a journalled action, checklist after it); Escape goes back "
             "and leaves an ingest under way running.", "grey50"))
        yield Static(about, id="ingest-about")
        with Horizontal(id="ingest-bar-row"):
            yield ProgressBar(id="ingest-bar", show_eta=False)
            yield Label("", id="ingest-words")
        yield Static("", id="ingest-line")
        yield Static("", id="ingest-outcome")
        yield RecallChart(id="ingest-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ingest-bar-row").display = False
        self.query_one("#ingest-line", Static).display = False
        self.read_progress()
        self.set_interval(POLL_S, self.poll)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return not (self.running or self.context.read_only or not self.spec.source)
        return True

    # -- the action ---------------------------------------------------------------------
    def action_start(self) -> None:
        if not self.check_action("start", ()):
            return
        self.running, self.ended = True, None
        self.query_one("#ingest-outcome", Static).update(Text("ingesting…", style="cyan"))
        ref_wanted = f"index/{self.spec.name}"

        def heard(_action: int, ref: str, line: str) -> None:  # a worker thread calls it
            if ref == ref_wanted:
                self.post_message(IngestLine(line))

        self._unsubscribe = self.context.engine.subscribe_progress(heard)
        self.refresh_bindings()
        self.ingest()

    @work(thread=True, exclusive=True, exit_on_error=False, group="index-ingest",
          description="an index's ingest")
    def ingest(self) -> None:
        started = time.monotonic()
        try:
            record = self.context.engine.index_ingest(self.spec.name)
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(IngestEnded(None, "refused", error_text(exc), [],
                                          time.monotonic() - started))
            return
        failed = [f"{c.name}: {c.detail}" for c in record.checks if not c.ok]
        self.post_message(IngestEnded(record.id, record.status, record.error, failed,
                                      time.monotonic() - started))

    def on_ingest_ended(self, message: IngestEnded) -> None:
        self.running, self.ended = False, message
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.refresh_bindings()
        ok = message.status == "succeeded" and not message.failed_checks
        text = Text(f"action {message.action_id}: " if message.action_id else "",
                    style="bold")
        text.append(f"{message.status} in {message.seconds:.1f}s",
                    style="bold green" if ok else "bold red")
        if message.error:
            text.append(f"\n{message.error}", style="red")
        for check in message.failed_checks:
            text.append(f"\ncheck failed: {check}", style="yellow")
        self.query_one("#ingest-outcome", Static).update(text)
        self.notify(str(text.plain), title=f"ingest of index {self.spec.name}",
                    severity="information" if ok else "error", timeout=10)
        self.read_progress()

    def on_ingest_line(self, message: IngestLine) -> None:
        line = self.query_one("#ingest-line", Static)
        line.display = True
        line.update(Text(message.line[:300]))

    # -- the progress bar and the chart ---------------------------------------------------
    def poll(self) -> None:
        if self.running:
            self.read_progress()

    @work(thread=True, exclusive=True, exit_on_error=False, group="index-ingest-progress",
          description="an index's ingest progress")
    def read_progress(self) -> None:
        try:
            points = self.context.engine.progress(self.spec)
        except Exception:  # noqa: BLE001 - the bar waits for the next poll
            points = None
        self.post_message(IngestProgressed(points))

    def on_ingest_progressed(self, message: IngestProgressed) -> None:
        if message.points is None:
            return
        self.points = message.points
        bar = ingest_bar(message.points)
        self.query_one("#ingest-bar-row").display = bar is not None
        if bar is not None:
            done, total, words = bar
            self.query_one("#ingest-bar", ProgressBar).update(total=total, progress=done)
            self.query_one("#ingest-words", Label).update(words)
        self.query_one(RecallChart).plot(evals_of(message.points))

    def action_close(self) -> None:
        self.dismiss(None)

