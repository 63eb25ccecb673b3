"""The History view: every action; `enter` shows its diff and journal, `ctrl+z` rolls it back."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from llmops.console.messages import ActionsLoaded, RollbackPreviewed
from llmops.console.screens.action_detail import ActionDetailScreen
from llmops.console.screens.base import View
from llmops.console.screens.rollback_offer import confirm_rollback, preview_message
from llmops.console.widgets import render
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.journal import ActionRecord, Event

COLUMNS = ("id", "when", "who", "summary", "status", "took", "commits")
POLL_INTERVAL = 5.0
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
    ]

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.actions: dict[int, ActionRecord] = {}
        self.filter_text = ""
        self.pending_select: int | None = None

    def compose(self) -> ComposeResult:
        yield ResourceTable(id="history-table")

    def on_mount(self) -> None:
        self.query_one(ResourceTable).add_columns(*COLUMNS)
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-load",
          description="read the journal")
    def load(self) -> None:
        self.post_message(ActionsLoaded(self.context.lab.journal.actions()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback-preview",
          description="preview a rollback")
    def preview(self, action_id: int) -> None:
        self.post_message(preview_message(self.context.engine, action_id))

    def on_actions_loaded(self, message: ActionsLoaded) -> None:
        self.actions = {a.id: a for a in message.actions}
        self.rebuild()
        if self.pending_select is not None:
            self.query_one(ResourceTable).select_key(str(self.pending_select))
            self.pending_select = None
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
        table = self.query_one(ResourceTable)
        selected = table.selected_key
        table.clear()
        for a in sorted(self.actions.values(), key=lambda r: -r.id):
            cells = self.row_cells(a)
            plain = " ".join(c.plain if isinstance(c, Text) else c for c in cells)
            if self.filter_text.lower() in plain.lower():
                table.add_row(*cells, key=str(a.id))
        if selected:
            table.select_key(selected)
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
        else:
            self.pending_select = action_id

    @property
    def selected(self) -> ActionRecord | None:
        key = self.query_one(ResourceTable).selected_key
        return self.actions.get(int(key)) if key else None

    def can_run(self, action: str) -> bool | None:
        record = self.selected
        if record is None:
            return None
        if action == "rollback" and record.display_status in NOT_UNDOABLE:
            return None
        return True

    def on_data_table_row_highlighted(self) -> None:
        self.update_bindings()

    def action_open(self) -> None:
        if (record := self.selected) is not None:
            self.app.push_screen(ActionDetailScreen(self.context, record))

    def action_rollback(self) -> None:
        if (record := self.selected) is not None:
            self.preview(record.id)

    def on_rollback_previewed(self, message: RollbackPreviewed) -> None:
        confirm_rollback(self, self.context, message)
