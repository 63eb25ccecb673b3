"""The log screen of any resource whose kind has logs (HasLogs, through the engine): the tail,
followed every couple of seconds, without the health and metrics polls' access lines."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, RichLog

from llmops.console.messages import LogsLoaded
from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.ops.kinds.base import Spec
from llmops.rollback.kinds import kind_of
from llmops.rollback.telemetry import ref_of

FOLLOW_INTERVAL = 2.0
LOG_LINES = 300
READ_LINES = LOG_LINES * 10
"""Read this many, show the last LOG_LINES of what is left once the polls are hidden."""
POLL_LINE = re.compile(r'"GET /(metrics|health|v1/models) HTTP/[\d.]+" 200')
"""An answered poll's access line (uvicorn's): the console asks /metrics every 2 s, so a
server up for ten minutes had nothing else in its last 300 lines."""


def without_polls(lines: list[str]) -> tuple[list[str], int]:
    """The lines that are not an answered poll, and how many were."""
    kept = [line for line in lines if not POLL_LINE.search(line)]
    return kept, len(lines) - len(kept)


class LogScreen(Screen[None]):
    """One resource's log; `f` stops (or resumes) following it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="logs.close", tooltip="Back to the list"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow",
                tooltip="Keep reading new lines (on by default)"),
        Binding("a", "toggle_polls", "All lines", id="logs.polls",
                tooltip="Show or hide the access lines of answered /metrics, /health and "
                        "/v1/models polls (hidden by default)"),
    ]

    def __init__(self, context: ViewContext, spec: Spec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        kind = kind_of(spec)
        self.ref, self.host = ref_of(kind.name, spec.name), kind.host_of(spec)
        self.follow = True
        self.show_polls = False
        self.lines: list[str] = []
        self.read: list[str] = []
        self.next_read: Timer | None = None

    def heading(self, hidden: int) -> Text:
        where = f" on {self.host}" if self.host else ""
        polls = "answered polls shown (a hides them)" if self.show_polls else (
            f"{hidden} lines of answered polls hidden (a shows them)" if hidden else "")
        return Text(f"log of {self.ref.replace('/', ' ')}{where} (last {LOG_LINES} lines"
                    + (f"; {polls})" if polls else ")"))

    def compose(self) -> ComposeResult:
        yield Label(self.heading(0), classes="screen-title", id="log-title")
        yield RichLog(id="resource-log", max_lines=LOG_LINES * 2, markup=False, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs",
          description="read a log tail")
    def load(self) -> None:
        try:
            lines = self.context.engine.logs(self.spec, READ_LINES)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.post_message(LogsLoaded(self.ref, [], error_text(exc)))
            return
        self.post_message(LogsLoaded(self.ref, lines, None))

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        log = self.query_one(RichLog)
        if message.error is not None:
            log.write(Text(f"cannot read the log: {message.error}", style="red"))
        else:
            self.read = message.lines
            self.show_lines()
        if self.follow:
            if self.next_read is not None:
                self.next_read.stop()  # one reading at a time, however often `f` was pressed
            self.next_read = self.set_timer(FOLLOW_INTERVAL, self.load)

    def show_lines(self) -> None:
        lines, hidden = (self.read, 0) if self.show_polls else without_polls(self.read)
        lines = lines[-LOG_LINES:]
        self.query_one("#log-title", Label).update(self.heading(hidden))
        if lines != self.lines:
            log = self.query_one(RichLog)
            log.clear()
            log.write("\n".join(lines) if lines else "(the log is empty)")
            self.lines = lines

    def action_toggle_polls(self) -> None:
        self.show_polls = not self.show_polls
        self.show_lines()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify("following the log" if self.follow else "stopped following")
        if self.follow:
            self.load()

    def action_close(self) -> None:
        self.dismiss(None)
