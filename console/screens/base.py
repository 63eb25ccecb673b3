"""What every view of the main screen is: a tab with declared bindings and a filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding
from textual.containers import Vertical

from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab
from llmops.rollback.records import Event


def empty_state(title: str, what: str, cli: str, key: str | None = None,
                read_only: bool = False) -> str:
    """What a view says before it has a row: what will appear, and how to make the first."""
    if read_only:
        how = "This console is read-only; create one with:"
    elif key:
        how = f"Press [b]{key}[/b] for a new one, or run:"
    else:
        how = "Create one with:"
    return f"[b]No {title.lower()} yet.[/b]\n\n{what}\n\n{how}\n\n  [b]{cli}[/b]"


@dataclass(frozen=True)
class ViewContext:
    """What a view needs, passed in explicitly (no global state)."""

    lab: Lab
    engine: Engine
    read_only: bool


class View(Vertical):
    """A tab of the main screen. Subclasses set `view_id`, `title`, `BINDINGS` (each with an
    `id` and a `tooltip`) and `CHANGING`: the actions that change the lab, hidden read-only."""

    view_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    CHANGING: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, context: ViewContext) -> None:
        super().__init__(id=f"view-{self.view_id}", classes="view")
        self.context = context

    @classmethod
    def declared_bindings(cls, read_only: bool = False) -> list[Binding]:
        """This view's own bindings (and its bases'), without the changing ones when read-only."""
        found: list[Binding] = []
        for klass in reversed(cls.__mro__):
            if isinstance(klass, type) and issubclass(klass, View):
                found += [b for b in klass.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
        return [b for b in found if not (read_only and b.action in cls.CHANGING)]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.CHANGING and self.context.read_only:
            return False
        return self.can_run(action)

    def update_bindings(self) -> None:
        """Refresh the footer only when what can run changed (a footer refresh recomposes it)."""
        state = tuple(self.check_action(b.action, ()) for b in self.declared_bindings())
        if state != getattr(self, "_binding_state", None):
            self._binding_state = state
            self.refresh_bindings()

    def can_run(self, action: str) -> bool | None:
        """True: runs; None: shown dimmed (not possible here and now)."""
        return True

    @property
    def modal_open(self) -> bool:
        """Polling pauses while a dialog or detail screen covers the main screen."""
        if not self.is_attached:
            return False
        stack = self.app.screen_stack  # empty while the app shuts down: pause then too
        return not stack or stack[-1] is not self.screen

    @property
    def is_active(self) -> bool:
        return self.display and self.parent is not None and self.parent.display

    def set_filter(self, text: str) -> None:
        """Show only the rows that contain `text` (the `/` filter)."""

    def focus_main(self) -> None:
        """Give focus to the view's main widget (its table)."""
        focusable = [w for w in self.query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def refresh_data(self) -> None:
        """Reload what the view shows (after an action, on `r`)."""

    def journal_event(self, event: Event) -> None:
        """A journal event was written by this console (any thread, delivered on the loop)."""
