"""Views for the kinds still to come: each says what will appear and how to create it (none
just now: every kind of the lab has its ResourceView)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.widgets import Static

from llmops.console.screens.base import View, empty_state


class PlannedView(View):
    """An empty state: what this view will list and the command that creates one."""

    what: ClassVar[str] = ""
    how: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield Static(empty_state(self.title, self.what, self.how), classes="empty-state")

