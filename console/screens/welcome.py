"""First run: the idea in three lines, and the two ways to add a first host."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, Static

IDEA = (
    "[b]1.[/b] Every change is an [b]action[/b]: committed to git and journalled before it "
    "touches a host.\n"
    "[b]2.[/b] Every action can be [b]rolled back[/b], and the rollback is checked.\n"
    "[b]3.[/b] Press [b]ctrl+z[/b] on [b]History[/b] to undo the selected action."
)


class WelcomeScreen(Screen[str | None]):
    """Answers "local", "remote" or None (look around first)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "choose('local')", "Add this machine", id="welcome.local",
                tooltip="Add this machine as host `local`"),
        Binding("r", "choose('remote')", "Add a remote host", id="welcome.remote",
                tooltip="Add a host over SSH by address"),
        Binding("escape", "choose('')", "Skip", id="welcome.skip", tooltip="Look around first"),
    ]

    def __init__(self, read_only: bool) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome-box"):
            yield Label("Welcome to llmops", classes="dialog-title")
            yield Static(IDEA, id="welcome-idea")
            if self.read_only:
                yield Static("This lab is empty and the console is read-only: run `llmops` "
                             "without --read-only to add a host.", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                if not self.read_only:
                    yield Button("Add this machine as `local`", variant="primary", id="local")
                    yield Button("Add a remote host…", id="remote")
                yield Button("Skip", id="skip")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and self.read_only and parameters and parameters[0]:
            return False
        return True

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose("" if event.button.id == "skip" else str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
