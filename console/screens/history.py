"""The History view: the newest actions (`o` pages older ones in); `enter` shows an action's
diff and journal, `ctrl+z` rolls it back. Only the actions shown are read from the journal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message

from llmops.console.messages import RollbackPreviewed
from llmops.console.screens.action_detail import ActionDetailScreen
from llmops.console.screens.base import View
from llmops.console.screens.rollback_offer import confirm_rollback, preview_message
from llmops.console.widgets import render
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.records import ActionRecord, Event

COLUMNS = ("id", "when", "who", "summary", "status", "took", "commits")
POLL_INTERVAL = 5.0
PAGE = 200
"""Actions read per page: a long journal opens as fast as a short one."""


@dataclass
class HistoryPage(Message):
    """The newest `limit` actions (oldest first) and how many there are in all."""

    actions: list[ActionRecord]
    total: int
NOT_UNDOABLE = ("running", "failed, reverted")


class HistoryView(View):
    """Actions newest first, with status, duration and commits."""

    view_id = "history"
    title = "History"
    CHANGING = frozenset({"rollback"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Diff & journal", id="history.open",
                tooltip="The action's TOML diff, steps, timings and checks"),
        Binding("ctrl+z", "rollback", "Roll back", id="history.rollback",
                tooltip="Undo the selected action (a new action; confirm first)"),
        Binding("o", "older", "Older", id="history.older",
                tooltip=f"Show {PAGE} older actions too (the newest are read first)"),
    ]

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.actions: dict[int, ActionRecord] = {}
        self.filter_text = ""
        self.pending_select: int | None = None
        self.limit = PAGE
        self.total = 0
        self.gap_checked = False

    def compose(self) -> ComposeResult:
        yield ResourceTable(id="history-table")

    def on_mount(self) -> None:
        self.query_one(ResourceTable).add_columns(*COLUMNS)
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-load",
          description="read the journal")
    def load(self) -> None:
        lab = self.context.lab
        self.post_message(HistoryPage(lab.journal.actions(limit=self.limit),
                                      lab.journal.action_count()))
        if not self.gap_checked:  # once, after the page: it reads git's log
            self.gap_checked = True
            if missing := lab.journal_gap():
                self.app.call_from_thread(
                    self.app.notify,
                    f"git holds actions up to {missing} that the journal (lab.db) lacks: it was"
                    " deleted, replaced or cut short, so this history is incomplete."
                    " `llmops history --verify` says more.",
                    title="journal incomplete", severity="warning", timeout=30)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback-preview",
          description="preview a rollback")
    def preview(self, action_id: int) -> None:
        self.post_message(preview_message(self.context.engine, action_id))

    def on_history_page(self, message: HistoryPage) -> None:
        self.actions = {a.id: a for a in message.actions}
        self.total = message.total
        self.rebuild()
        if self.pending_select is not None:
            wanted, self.pending_select = self.pending_select, None
            self.select_action(wanted)
        self.set_timer(POLL_INTERVAL, self.poll)

    def poll(self) -> None:
        if self.modal_open:
            self.set_timer(1.0, self.poll)
        else:
            self.load()

    def journal_event(self, event: Event) -> None:
        if event.event in ("started", "succeeded", "failed", "interrupted"):
            self.load()

    def row_cells(self, a: ActionRecord) -> list[str | Text]:
        return [str(a.id), render.when(a.started_at), a.who, a.summary,
                render.status_cell(a.display_status), render.seconds_cell(a.seconds),
                render.commits_cell(a.before_commit, a.after_commit or a.commit)]

    def rebuild(self) -> None:
        newest_first = sorted(self.actions.values(), key=lambda r: -r.id)
        self.query_one(ResourceTable).fill(
            ((str(a.id), self.row_cells(a), 1) for a in newest_first), self.filter_text)
        self.update_bindings()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild()

    def refresh_data(self) -> None:
        self.load()

    def select_action(self, action_id: int) -> None:
        """Put the cursor on an action (now, or once the journal is loaded)."""
        if str(action_id) in self.query_one(ResourceTable).rows:
            self.query_one(ResourceTable).select_key(str(action_id))
            return
        self.pending_select = action_id
        if self.actions and action_id < min(self.actions) and len(self.actions) < self.total:
            self.limit += min(self.actions) - action_id  # older than the page: read down to it
            self.load()

    @property
    def selected(self) -> ActionRecord | None:
        key = self.query_one(ResourceTable).selected_key
        return self.actions.get(int(key)) if key else None

    def can_run(self, action: str) -> bool | None:
        if action == "older":
            return True if len(self.actions) < self.total else None
        record = self.selected
        if record is None:
            return None
        if action == "rollback" and record.display_status in NOT_UNDOABLE:
            return None
        return True

    def on_data_table_row_highlighted(self) -> None:
        self.update_bindings()

    def action_older(self) -> None:
        self.limit += PAGE
        self.load()

    def action_open(self) -> None:
        if (record := self.selected) is not None:
            self.app.push_screen(ActionDetailScreen(self.context, record))

    def action_rollback(self) -> None:
        if (record := self.selected) is not None:
            self.preview(record.id)

    def on_rollback_previewed(self, message: RollbackPreviewed) -> None:
        confirm_rollback(self, self.context, message)
