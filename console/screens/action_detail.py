"""One action: its TOML diff (syntax-coloured) and its journal (steps, timings, checks)."""

from __future__ import annotations

from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from llmops.console.messages import ActionDetailLoaded
from llmops.console.screens.base import ViewContext
from llmops.console.screens.journal_render import journal_table
from llmops.console.widgets import render
from llmops.rollback.lab import spec_path
from llmops.rollback.records import ActionRecord


class ActionDetailScreen(Screen[None]):
    """Loads the diff in a worker (git), shows the journal at once."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="action_detail.close", tooltip="Back to History"),
    ]

    def __init__(self, context: ViewContext, action: ActionRecord) -> None:
        super().__init__()
        self.context, self.action = context, action
        self.diff: str | None = None

    def compose(self) -> ComposeResult:
        a = self.action
        yield Label(Text(f"action {a.id}: {a.summary}"), classes="screen-title")
        with VerticalScroll():
            info = Text()
            info.append(f"{render.when(a.started_at)} by {a.who} · ")
            info.append_text(render.status_cell(a.display_status))
            info.append(f" · {render.seconds_cell(a.seconds)} · commits "
                        f"{render.commits_cell(a.before_commit, a.after_commit or a.commit)}")
            if a.rollback_of:
                info.append(f" · rollback of action {a.rollback_of}")
            if a.rolled_back_by:
                info.append(f" · rolled back by action {a.rolled_back_by}", style="cyan")
            if a.error:
                info.append(f"\nerror: {a.error}", style="red")
            yield Static(info)
            yield Label("Diff", classes="section-title")
            yield Static("loading…", id="diff")
            yield Label("Journal", classes="section-title")
            yield Static(journal_table(a.steps, a.checks), id="journal")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="action-detail",
          description="read an action's diff")
    def load(self) -> None:
        a, lab = self.action, self.context.lab
        after = a.after_commit or a.commit or a.before_commit
        paths = [spec_path(kind, name) for kind, name in a.refs]
        diff = lab.diff(a.before_commit, after, paths) if a.before_commit else ""
        self.post_message(ActionDetailLoaded(a, diff))

    def on_action_detail_loaded(self, message: ActionDetailLoaded) -> None:
        self.diff = message.diff
        body = (Syntax(message.diff, "diff", theme="ansi_dark", word_wrap=True)
                if message.diff.strip() else "no change to the desired-state files")
        self.query_one("#diff", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)
