"""The views of the main screen, in tab order: adding a view is one line here."""

from __future__ import annotations

from llmops.console.screens.base import View
from llmops.console.screens.history import HistoryView
from llmops.console.screens.hosts import HostsView
from llmops.console.screens.planned import AdaptersView, IndexesView, RunsView
from llmops.console.screens.servers import ServersView

VIEWS: list[type[View]] = [
    HostsView,
    ServersView,
    RunsView,
    AdaptersView,
    IndexesView,
    HistoryView,
]


def view_class(view_id: str) -> type[View]:
    return next(v for v in VIEWS if v.view_id == view_id)
