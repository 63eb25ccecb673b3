"""What every spec form shares: submit only a valid spec that changes something, say why not
otherwise, cancel with escape. Subclasses validate as the operator types."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button

from llmops.ops.kinds.base import Spec

SpecT = TypeVar("SpecT", bound=Spec)


class SpecFormScreen(ModalScreen[SpecT | None], Generic[SpecT]):
    """A modal form that dismisses with a validated spec, or None when cancelled."""

    noun = "spec"
    """How the form names its resource in messages ("host", "server")."""

    def __init__(self, base: SpecT | None = None, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.base = base
        """The spec being edited (None for a new resource): submitting it unchanged is refused."""
        self.spec: SpecT | None = None
        self.problems: dict[str, str] = {}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.spec is None:
            self.notify("; ".join(f"{k or self.noun}: {v}" for k, v in self.problems.items()),
                        title="not yet", severity="warning")
            return
        if self.base is not None and self.spec == self.base:
            self.notify("nothing changed", severity="warning")
            return
        self.dismiss(self.spec)

    def action_cancel(self) -> None:
        self.dismiss(None)
