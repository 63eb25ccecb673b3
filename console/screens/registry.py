"""The views of the main screen, in tab order: adding a view is one line here. A resource
kind's view is the generic ResourceView, configured by the kind's presenter."""

from __future__ import annotations

from llmops.console.presenters.adapter import AdapterPresenter
from llmops.console.presenters.cluster import ClusterPresenter
from llmops.console.presenters.env import EnvPresenter
from llmops.console.presenters.gateway import GatewayPresenter
from llmops.console.presenters.host import HostPresenter
from llmops.console.presenters.index import IndexPresenter
from llmops.console.presenters.run import RunPresenter
from llmops.console.presenters.server import ServerPresenter
from llmops.console.screens.base import View
from llmops.console.screens.history import HistoryView
from llmops.console.screens.resource_verbs import resource_view

VIEWS: list[type[View]] = [
    resource_view(HostPresenter()),
    resource_view(ServerPresenter()),
    resource_view(RunPresenter()),
    resource_view(AdapterPresenter()),
    resource_view(IndexPresenter()),
    HistoryView,
    resource_view(EnvPresenter()),  # after History: its key (6) stays
    resource_view(GatewayPresenter()),
    resource_view(ClusterPresenter()),
]


def view_class(view_id: str) -> type[View]:
    return next(v for v in VIEWS if v.view_id == view_id)
