"""The frame: header, a tab per registered view, the `/` filter and the footer."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, TabbedContent, TabPane

from llmops.console.messages import ResourcesCounted
from llmops.console.screens.base import View, ViewContext
from llmops.console.screens.dialogs import JumpScreen
from llmops.console.screens.registry import VIEWS
from llmops.console.widgets.header import LabHeader
from llmops.rollback.records import Event


class MainScreen(Screen[None]):
    """Holds one instance of every view; only the active tab's bindings are live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "jump", "Jump", id="main.jump", tooltip="Go to a view by name (:hosts)"),
        Binding("slash", "filter", "Filter", id="main.filter",
                tooltip="Show only the rows that contain some text"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="main.clear_filter",
                tooltip="Drop the filter"),
        Binding("r", "refresh", "Refresh", id="main.refresh", tooltip="Reload the current view"),
        *[Binding(str(i), f"show('{v.view_id}')", v.title, show=False, id=f"main.view_{v.view_id}",
                  tooltip=f"Go to {v.title}") for i, v in enumerate(VIEWS, start=1)],
    ]

    def __init__(self, context: ViewContext, lab_path: Path) -> None:
        super().__init__()
        self.context, self.lab_path = context, lab_path

    def compose(self) -> ComposeResult:
        yield LabHeader(self.lab_path, self.context.read_only, id="header")
        with TabbedContent(id="views"):
            for view in VIEWS:
                with TabPane(view.title, id=f"tab-{view.view_id}"):
                    yield view(self.context)
        filter_input = Input(placeholder="/ filter: type to narrow the rows, esc to clear",
                             id="filter")
        filter_input.display = False
        yield filter_input
        yield Footer()

    def on_mount(self) -> None:
        self.active_view.focus_main()

    @property
    def views(self) -> list[View]:
        return list(self.query(View))

    def view(self, view_id: str) -> View:
        return self.query_one(f"#view-{view_id}", View)

    @property
    def active_view(self) -> View:
        active = self.query_one(TabbedContent).active or f"tab-{VIEWS[0].view_id}"
        return self.view(active.removeprefix("tab-"))

    def action_show(self, view_id: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{view_id}"
        self.view(view_id).focus_main()

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if filter_input.value:
            filter_input.value = ""
        filter_input.display = False
        self.active_view.focus_main()
        self.refresh_bindings()

    def action_jump(self) -> None:
        def jumped(view_id: str | None) -> None:
            if view_id:
                self.action_show(view_id)

        self.app.push_screen(JumpScreen({v.title: v.view_id for v in VIEWS}), jumped)

    def action_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        filter_input.display = True
        filter_input.focus()

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        filter_input.value = ""
        filter_input.display = False
        self.active_view.focus_main()

    def action_refresh(self) -> None:
        self.active_view.refresh_data()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.active_view.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.active_view.focus_main()

    def on_resources_counted(self, message: ResourcesCounted) -> None:
        if message.kind == "host":  # the header counts the hosts that answer
            header = self.query_one(LabHeader)
            header.hosts_up, header.hosts_total = message.up, message.total

    def journal_event(self, event: Event) -> None:
        for view in self.views:
            view.journal_event(event)
