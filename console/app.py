"""The llmops console: opens the lab in a worker, then shows the frame of registered views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.widgets import Label, Static

from llmops.console.commands import ViewCommands
from llmops.console.messages import JournalAppended, LabFailed, LabOpened, LabStatus
from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.console.screens.dialogs import ConfirmScreen, HelpScreen, HelpSection
from llmops.console.screens.history import HistoryView
from llmops.console.screens.main import MainScreen
from llmops.console.screens.registry import VIEWS
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.welcome import WelcomeScreen
from llmops.console.widgets.header import LabHeader
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab, default_lab_path
from llmops.rollback.lock import LockHolder
from llmops.rollback.records import Event

LOCK_POLL = 2.0
THEMES = ("textual-dark", "textual-light")


class LlmopsApp(App[None]):
    """k9s-style: a header, a tab per view, a footer of what works here and now."""

    CSS_PATH = "app.tcss"
    TITLE = "llmops"
    COMMANDS = App.COMMANDS | {ViewCommands}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (38, "-tall")]
    """Below 38 rows a dialog's body scrolls sooner, so that its buttons stay on screen."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help",
                tooltip="Every key, generated from the declared bindings"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="app.palette",
                tooltip="Search every action of every view"),
        Binding("t", "toggle_theme", "Theme", id="app.theme", tooltip="Light or dark"),
        Binding("f2", "toggle_intro", "Script", show=False, id="app.intro",
                tooltip="Show or hide the on-screen script of the demo"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the console"),
    ]

    def __init__(self, lab_path: Path | None = None, *, read_only: bool = False,
                 intro: str | None = None) -> None:
        super().__init__()
        self.lab_path = lab_path or default_lab_path()
        self.read_only = read_only
        self.intro = intro
        """A short script shown on the main screen (the demo's tour), hidden with f2."""
        self.context: ViewContext | None = None
        self.main: MainScreen | None = None
        self.interrupted: list[int] = []
        self.interrupted_why: dict[int, str] = {}
        """Who died mid-action, per interrupted action (the journal's note)."""
        self.quitting = False
        """`q` was answered "quit when it ends": the console closes when its action does."""
        self.asking_quit = False

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every toast is plain text: messages carry names, errors and host output, whose
        brackets would be read as markup (views' `self.notify` passes markup=True itself)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def compose(self) -> ComposeResult:
        yield Label(Text(f"opening the lab at {self.lab_path} …"), id="opening")

    def on_mount(self) -> None:
        self.theme = THEMES[0]
        self.open_lab()

    # -- start-up -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="lab",
          description="open the lab and recover interrupted actions")
    def open_lab(self) -> None:
        try:
            lab = Lab(self.lab_path, create=not self.read_only)
            engine = Engine(lab)
            engine.records = not self.read_only
            interrupted = [] if self.read_only else engine.recover()
            actions = (lab.journal.actions(from_id=min(interrupted)) if interrupted
                       else lab.journal.actions(limit=1))  # only what is needed here
            self.interrupted_why = {a.id: a.error or "" for a in actions if a.id in interrupted}
            empty = not lab.specs() and not actions
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.post_message(LabFailed(error_text(exc)))
            return
        self.post_message(LabOpened(lab, engine, empty, interrupted))

    def on_lab_failed(self, message: LabFailed) -> None:
        self.query_one("#opening", Label).update(
            Text(f"cannot open the lab at {self.lab_path}:\n{message.error}"))

    async def on_lab_opened(self, message: LabOpened) -> None:
        self.context = ViewContext(message.lab, message.engine, self.read_only)
        self._unsubscribe = message.lab.journal.subscribe(self._journal_listener)
        self.main = MainScreen(self.context, self.lab_path)
        await self.push_screen(self.main)
        if self.intro:
            await self.main.mount(Static(f"{self.intro}\n[dim](f2 hides this)[/dim]", id="intro"))
        self.poll_lock()
        if message.empty:
            self.push_screen(WelcomeScreen(self.read_only), self.welcome_done)
        self.interrupted = message.interrupted
        for notice in message.lab.notices:  # what opening the lab repaired (a lost lab.db)
            self.notify(notice, title="the lab was repaired", severity="warning", timeout=30)
        for action_id in message.interrupted:
            why = self.interrupted_why.get(action_id) or "llmops died mid-action"
            self.notify(f"Action {action_id} was interrupted: {why}. It is selected on "
                        "History: press ctrl+z to roll it back.", markup=False,
                        title="interrupted action", severity="warning", timeout=20)
        if message.interrupted:
            self.show_view(HistoryView.view_id)
            self.main.view(HistoryView.view_id).select_action(message.interrupted[-1])  # type: ignore[attr-defined]

    def welcome_done(self, choice: str | None) -> None:
        if not choice or self.main is None:
            return
        self.show_view("hosts")
        hosts = self.main.view("hosts")
        assert isinstance(hosts, ResourceVerbs)
        hosts.action_new({"name": "local", "local": True} if choice == "local" else {})

    def on_unmount(self) -> None:
        if self.context is not None:
            self._unsubscribe()
            self.context.engine.close()  # say goodbye to the hosts' sshd instead of vanishing

    # -- polling and journal events ----------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="lock",
          description="who holds the lab lock")
    def poll_lock(self) -> None:
        if self.context is not None:
            self.post_message(LabStatus(self.context.lab.lock.holder()))

    def on_lab_status(self, message: LabStatus) -> None:
        if self.main is not None and self.main.is_attached:
            for header in self.main.query(LabHeader):  # none while the app shuts down
                header.holder = message.holder
        self.set_timer(LOCK_POLL, self._next_lock_poll)

    def _next_lock_poll(self) -> None:
        if not self.is_running or not self.screen_stack:
            return  # the app is shutting down: a timer may still fire once
        if self.screen_stack[-1] is not self.main:
            self.set_timer(1.0, self._next_lock_poll)  # paused while a modal is open
        else:
            self.poll_lock()

    def _journal_listener(self, event: Event) -> None:
        """Runs on whichever thread appended the event: only posts a message."""
        self.post_message(JournalAppended(event))

    def on_journal_appended(self, message: JournalAppended) -> None:
        if self.main is not None:
            self.main.journal_event(message.event)
        if message.event.event in ("started", "succeeded", "failed") and self.context:
            self.poll_lock()

    # -- navigation, help, palette ----------------------------------------------------------
    def show_view(self, view_id: str) -> None:
        if self.main is not None:
            self.main.action_show(view_id)

    async def run_view_action(self, view_id: str, action: str) -> None:
        """What a palette command does: go to the view, then run the action there."""
        if self.main is None:
            return
        self.show_view(view_id)
        view = self.main.view(view_id)
        if not view.check_action(action, ()):
            self.notify(f"{action} cannot run here now", severity="warning")
            return
        await self.run_action(action, view)

    def help_sections(self) -> list[HelpSection]:
        """Every declared binding, by where it works (read-only leaves out what changes)."""
        own = [b for b in type(self).BINDINGS if isinstance(b, Binding)]
        main = [b for b in MainScreen.BINDINGS if isinstance(b, Binding)]
        sections: list[HelpSection] = [("everywhere", own), ("every view", main)]
        sections += [(v.title, v.declared_bindings(self.read_only)) for v in VIEWS]
        return [(where, bindings) for where, bindings in sections if bindings]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_intro":
            return bool(self.intro) and self.main is not None
        return True

    def action_toggle_intro(self) -> None:
        if self.main is not None and self.intro:
            panel = self.main.query_one("#intro", Static)
            panel.display = not panel.display

    # -- quitting --------------------------------------------------------------------------
    def own_action(self) -> LockHolder | None:
        """The lab's lock when this console holds it: one of its actions is running."""
        if self.context is None:
            return None
        holder = self.context.lab.lock.holder()
        return holder if holder is not None and holder.pid == os.getpid() else None

    async def action_quit(self) -> None:
        """q: leave. While an action of this console runs, its thread is doing the work and the
        process cannot end before it (a vLLM start: minutes of a frozen screen, then a kill
        that interrupts it): ask, and close when the action ends."""
        holder = self.own_action()
        if holder is None:
            self.exit()
            return
        if self.quitting or self.asking_quit:
            if self.quitting:
                self.notify("the console closes when the action ends", title="quitting")
            return
        body = (f"An action this console started holds the lab since {holder.since[11:19]}"
                " UTC. The console cannot close before it ends: it is doing the work. Killed or"
                " with its terminal closed, the action stops mid-way (the next llmops command"
                " marks it interrupted and `llmops rollback N` puts back the state before it)."
                "\n\nQuit as soon as it ends?")

        def answered(sure: bool | None) -> None:
            self.asking_quit = False
            if sure:
                self.quitting = True
                self.notify("the console closes when the action ends", title="quitting",
                            timeout=30)
                self._quit_when_idle()

        self.asking_quit = True
        self.push_screen(ConfirmScreen("An action is running", body, yes="Quit when it ends"),
                         answered)

    def action_help_quit(self) -> None:
        """ctrl+c (a reflex): it does not quit; say which key does. Textual's own toast
        carries `[b]` markup, which this app's plain-text toasts would print as it is."""
        self.notify("Press q (or ctrl+q) to quit the console; ctrl+c does not.",
                    title="Do you want to quit?")

    def _quit_when_idle(self) -> None:
        if self.own_action() is None:
            self.exit()
        else:
            self.set_timer(0.5, self._quit_when_idle)

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]


def run_console(lab_path: Path | None, read_only: bool = False,
                intro: str | None = None) -> None:
    """Entry point of `llmops` with no subcommand; `llmops demo` passes its tour as `intro`."""
    app = LlmopsApp(lab_path, read_only=read_only, intro=intro)
    try:
        app.run()
    finally:
        if app.context is not None:
            app.context.engine.close()
            app.context.lab.close()
