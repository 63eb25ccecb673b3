"""The live rollback: steps and checks appear as the journal records them; a verdict at the end."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, RichLog

from llmops.console.messages import ActionDone, JournalAppended, ProgressLine
from llmops.console.screens.acting import EXPECTED, error_text
from llmops.console.screens.base import ViewContext
from llmops.console.screens.journal_render import check_row, step_row
from llmops.rollback.records import ActionRecord, CheckRow, Event, StepRow


class RollbackScreen(Screen[None]):
    """Runs `engine.rollback` in a worker and follows its journal events."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="rollback.close",
                tooltip="Back to History (the rollback goes on)"),
    ]

    def __init__(self, context: ViewContext, target: ActionRecord) -> None:
        super().__init__()
        self.context, self.target = context, target
        self.rollback_id: int | None = None
        self.started = time.monotonic()
        self.verdict: ActionRecord | None = None
        self.error: str | None = None
        self.seen: list[str] = []
        """What appeared, in order ("step host/x probe", "check host/x reachable")."""

    def compose(self) -> ComposeResult:
        yield Label(Text(f"rolling back action {self.target.id}: {self.target.summary}"),
                    classes="screen-title")
        yield Label("elapsed 0.0s", id="elapsed")
        yield DataTable(id="rollback-events", cursor_type="none")
        yield RichLog(id="rollback-log", max_lines=500, markup=False)
        yield Label("", id="verdict")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("", "what", "detail", "took")
        self._unsubscribe = [
            self.context.lab.journal.subscribe(self._journal_listener),
            self.context.engine.subscribe_progress(self._progress_listener),
        ]
        self.ticker = self.set_interval(0.1, self.tick)
        self.run_rollback()

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # called on the worker's thread: only post messages
    def _journal_listener(self, event: Event) -> None:
        self.post_message(JournalAppended(event))

    def _progress_listener(self, action_id: int, ref: str, line: str) -> None:
        self.post_message(ProgressLine(action_id, ref, line))

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback",
          description="roll back an action")
    def run_rollback(self) -> None:
        summary = f"rollback of action {self.target.id}"
        try:
            record = self.context.engine.rollback(self.target.id)
        except EXPECTED as exc:
            self.post_message(ActionDone(summary, None, error_text(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - the verdict shows it
            self.post_message(ActionDone(summary, None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ActionDone(summary, record, None))

    def tick(self) -> None:
        self.query_one("#elapsed", Label).update(f"elapsed {time.monotonic() - self.started:.1f}s")

    def on_journal_appended(self, message: JournalAppended) -> None:
        ev = message.event
        if ev.event == "started" and ev.data.get("rollback_of") == self.target.id:
            self.rollback_id = ev.action_id
            self.query_one(RichLog).write(f"action {ev.action_id}: {ev.data.get('summary')}")
        if ev.action_id != self.rollback_id:
            return
        table = self.query_one(DataTable)
        if ev.event == "step":
            row = step_row(StepRow.of(ev.data))
        elif ev.event == "check":
            row = check_row(CheckRow.of(ev.data))
        elif ev.event == "committed":
            self.query_one(RichLog).write(f"committed {str(ev.data.get('commit'))[:7]}")
            return
        else:
            return
        self.seen.append(row[1])
        table.add_row(*row)

    def on_progress_line(self, message: ProgressLine) -> None:
        if message.action_id == self.rollback_id:
            self.query_one(RichLog).write(f"{message.ref}: {message.line}")

    def on_action_done(self, message: ActionDone) -> None:
        self.ticker.stop()
        elapsed = time.monotonic() - self.started
        self.tick()
        verdict = self.query_one("#verdict", Label)
        if message.record is None:
            self.error = message.error
            verdict.update(Text(f"✗ not rolled back: {message.error}", style="bold red"))
            verdict.add_class("-failed")
            return
        record = self.verdict = message.record
        passed = sum(1 for c in record.checks if c.ok)
        ok = record.ok
        text = (f"✓ rolled back in {record.seconds or elapsed:.1f}s — action {record.id}, "
                f"{passed}/{len(record.checks)} checks passed" if ok else
                f"✗ {record.display_status} after {record.seconds or elapsed:.1f}s — action "
                f"{record.id}: {record.error or f'{passed}/{len(record.checks)} checks passed'}")
        verdict.update(Text(text, style="bold green" if ok else "bold red"))
        verdict.add_class("-ok" if ok else "-failed")

    def action_close(self) -> None:
        self.dismiss(None)
