"""Small modal screens shared by the views: confirm (with a timeout), help, jump to a view."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; a confirm that times out answers no (nothing happens by default)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Go ahead"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Cancel"),
    ]

    def __init__(self, title: str, body: RenderableType, *, yes: str = "Yes",
                 timeout: float | None = 60.0) -> None:
        super().__init__(classes="dialog")
        self.title_text, self.body, self.yes, self.remaining = title, body, yes, timeout

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text(self.title_text), classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):  # a str body holds names: never markup
                body = Text(self.body) if isinstance(self.body, str) else self.body
                yield Static(body, id="confirm-body")
            yield Label("", id="confirm-timeout")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="warning", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        if self.remaining is not None:
            self._show_remaining()
            self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        assert self.remaining is not None
        self.remaining -= 1
        if self.remaining <= 0:
            self.dismiss(False)
        else:
            self._show_remaining()

    def _show_remaining(self) -> None:
        self.query_one("#confirm-timeout", Label).update(
            f"cancels by itself in {self.remaining:.0f}s")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


HelpSection = tuple[str, list[Binding]]


class HelpScreen(ModalScreen[None]):
    """Every declared binding, by view, generated from the `Binding` declarations."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close",
                tooltip="Close the help"),
    ]

    def __init__(self, sections: list[HelpSection]) -> None:
        super().__init__(classes="dialog")
        self.sections = sections
        self.listed: list[str] = []
        """The ids of the bindings shown, in order (what the tests compare)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box help-box"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "key", "does", "why")
        for where, bindings in self.sections:
            for b in bindings:
                table.add_row(where, self.app.get_key_display(b), b.description, b.tooltip)
                self.listed.append(b.id or b.action)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


class JumpScreen(ModalScreen[str | None]):
    """`:` then a view's name (k9s habit): prefix match, case-insensitive."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="jump.cancel", tooltip="Stay where you are"),
    ]

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__(classes="jump")
        self.names = names  # title -> view id

    def compose(self) -> ComposeResult:
        yield Input(placeholder=":view (" + ", ".join(n.lower() for n in self.names) + ")",
                    suggester=SuggestFromList([n.lower() for n in self.names]), id="jump-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip().lstrip(":").lower()
        match = next((vid for title, vid in self.names.items()
                      if typed and (title.lower().startswith(typed) or vid.startswith(typed))),
                     None)
        if match is None:
            self.notify(f"no view called {typed!r}", severity="warning")
            return
        self.dismiss(match)

    def action_cancel(self) -> None:
        self.dismiss(None)
