"""The log screen of any resource whose kind has logs (HasLogs, through the engine): the tail,
followed every couple of seconds."""

from __future__ import annotations

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


class LogScreen(Screen[None]):
    """One resource's log; `f` stops (or resumes) following it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="logs.close", tooltip="Back to the list"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow",
                tooltip="Keep reading new lines (on by default)"),
    ]

    def __init__(self, context: ViewContext, spec: Spec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        kind = kind_of(spec)
        self.ref, self.host = ref_of(kind.name, spec.name), kind.host_of(spec)
        self.follow = True
        self.lines: list[str] = []
        self.next_read: Timer | None = None

    def compose(self) -> ComposeResult:
        where = f" on {self.host}" if self.host else ""
        yield Label(Text(f"log of {self.ref.replace('/', ' ')}{where} (last {LOG_LINES} lines)"),
                    classes="screen-title")
        yield RichLog(id="resource-log", max_lines=LOG_LINES * 2, markup=False, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs",
          description="read a log tail")
    def load(self) -> None:
        try:
            lines = self.context.engine.logs(self.spec, LOG_LINES)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.post_message(LogsLoaded(self.ref, [], error_text(exc)))
            return
        self.post_message(LogsLoaded(self.ref, lines, None))

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        log = self.query_one(RichLog)
        if message.error is not None:
            log.write(Text(f"cannot read the log: {message.error}", style="red"))
        elif message.lines != self.lines:
            log.clear()
            log.write("\n".join(message.lines) if message.lines else "(the log is empty)")
            self.lines = message.lines
        if self.follow:
            if self.next_read is not None:
                self.next_read.stop()  # one reading at a time, however often `f` was pressed
            self.next_read = self.set_timer(FOLLOW_INTERVAL, self.load)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify("following the log" if self.follow else "stopped following")
        if self.follow:
            self.load()

    def action_close(self) -> None:
        self.dismiss(None)
