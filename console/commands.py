"""The command palette (ctrl+p): every view, and every action of every view."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from llmops.console.screens.registry import VIEWS

if TYPE_CHECKING:
    from llmops.console.app import LlmopsApp

Command = tuple[str, str, Callable[[], object]]


def view_commands(app: LlmopsApp) -> Iterator[Command]:
    """(text, help, callback) for each view and each of its declared bindings; read-only
    leaves out every action that changes the lab."""
    for view in VIEWS:
        yield (f"{view.title}: go to", f"Show the {view.title} view",
               partial(app.show_view, view.view_id))
        for binding in view.declared_bindings(app.read_only):
            yield (f"{view.title}: {binding.description}", binding.tooltip,
                   partial(app.call_later, app.run_view_action, view.view_id, binding.action))


class ViewCommands(Provider):
    """Offers `Hosts: Add`, `History: Roll back`, ... as in the footers, plus `View: go to`."""

    @property
    def console(self) -> LlmopsApp:
        return cast("LlmopsApp", self.app)

    def _commands(self) -> list[Command]:
        if self.console.context is None:
            return []
        return list(view_commands(self.console))

    async def discover(self) -> Hits:
        for text, help_text, callback in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, text=text, help=help_text)
