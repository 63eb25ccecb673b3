"""The console's frame: first run, views, help, palette, jump, filter, read-only, layout."""

from __future__ import annotations

import sys
from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    host_state,
    hosts_view,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Button, Input, Label, TabbedContent

from llmops.console.app import LlmopsApp
from llmops.console.commands import view_commands
from llmops.console.screens.dialogs import HelpScreen, JumpScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.planned import PlannedView
from llmops.console.screens.registry import VIEWS
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.screens.welcome import WelcomeScreen
from llmops.console.widgets.header import LabHeader
from llmops.console.widgets.table import ResourceTable


async def test_first_run_welcome_then_add_local(tmp_path: Path) -> None:
    app = LlmopsApp(tmp_path / "lab")
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await on_screen(pilot, WelcomeScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "action" in text and "rolled back" in text and "ctrl+z" in text
        await pilot.press("l")
        await on_screen(pilot, SpecFormScreen)
        form = app.screen
        assert form.query_one("#field-name", Input).value == "local"
        form.query_one("#field-python", Input).value = sys.executable
        form.query_one("#field-workdir", Input).value = str(tmp_path / "w")
        await pilot.pause()
        assert form.spec is not None and form.spec.local
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        table = hosts_view(app).query_one(ResourceTable)
        assert table.row_count == 1 and table.selected_key == "local"
        await wait_for(pilot, lambda: app.main.query_one(LabHeader).hosts_up == 1, what="header")
        close_app_lab(app)


async def test_form_validates_as_you_type(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("a")
        await on_screen(pilot, SpecFormScreen)
        form = app.screen
        await pilot.press("B", "a", "d")
        assert "lowercase" in shown_text(form.query_one("#error-name", Label))
        assert form.query_one("#submit", Button).disabled
        form.query_one("#field-name", Input).value = "gpu-1"
        form.query_one("#field-port", Input).value = "99999"
        await pilot.pause()
        assert "65535" in shown_text(form.query_one("#error-port", Label))
        form.query_one("#field-port", Input).value = "2222"
        await pilot.pause()
        assert "address" in shown_text(form.query_one("#error-", Label))
        form.query_one("#field-address", Input).value = "10.0.0.7"
        await pilot.pause()
        assert form.spec is not None and form.spec.port == 2222
        assert not form.query_one("#submit", Button).disabled
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        close_app_lab(app)


async def test_planned_views_say_what_will_appear(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        for i, view in enumerate(VIEWS, start=1):
            await pilot.press(str(i))
            assert app.main.query_one(TabbedContent).active == f"tab-{view.view_id}"
            if issubclass(view, PlannedView):
                text = str(app.main.view(view.view_id).query_one(".empty-state").render())
                assert f"No {view.title.lower()} yet" in text and "llmops " in text
        close_app_lab(app)


async def test_help_lists_exactly_the_declared_bindings(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("question_mark")
        await on_screen(pilot, HelpScreen)
        declared = [b.id for b in LlmopsApp.BINDINGS] + [b.id for b in MainScreen.BINDINGS]
        for view in VIEWS:
            declared += [b.id for b in view.__dict__.get("BINDINGS", [])]
        assert app.screen.listed == declared
        assert all(b.tooltip for b in [*LlmopsApp.BINDINGS, *MainScreen.BINDINGS])
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        close_app_lab(app)


async def test_jump_filter_and_palette(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path), local_host(tmp_path, "other"))
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        table = hosts_view(app).query_one(ResourceTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="two hosts")
        await pilot.press("slash", "o", "t", "h")
        await wait_for(pilot, lambda: table.row_count == 1 and table.selected_key == "other",
                       what="the filter to leave only `other`")
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 2, what="the filter cleared")
        await pilot.press("colon", "h", "i", "s", "enter")
        await on_screen(pilot, MainScreen)
        assert app.main.query_one(TabbedContent).active == "tab-history"
        await pilot.press("colon")
        await on_screen(pilot, JumpScreen)
        await pilot.press("escape")
        texts = [text for text, _, _ in view_commands(app)]
        assert "Hosts: Add" in texts and "History: Roll back" in texts and "Runs: go to" in texts
        await app.run_view_action("hosts", "add")
        await on_screen(pilot, SpecFormScreen)
        close_app_lab(app)


async def test_read_only_hides_every_change(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        header = app.main.query_one(LabHeader)
        assert "READ-ONLY" in header.render().plain
        keys = footer_keys(app)
        assert "probe" in keys and "open" in keys and not {"add", "remove"} & keys
        await pilot.press("a", "d")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("6")
        await wait_for(pilot, lambda: app.main.view("history").query_one(ResourceTable).row_count,
                       what="history rows")
        assert "rollback" not in footer_keys(app) and "open" in footer_keys(app)
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        texts = [text for text, _, _ in view_commands(app)]
        assert "Hosts: Add" not in texts and "History: Roll back" not in texts
        assert "Hosts: Probe" in texts
        await pilot.press("question_mark")
        listed = app.screen.listed
        assert "hosts.add" not in listed and "history.rollback" not in listed
        assert "hosts.probe" in listed
        close_app_lab(app)


async def test_layout_header_tabs_table_footer(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        screen = app.screen
        header = screen.query_one(LabHeader).region
        footer = screen.query_one("Footer").region
        table = hosts_view(app).query_one(ResourceTable).region
        assert (header.y, header.height, header.width) == (0, 1, SIZE[0])
        assert (footer.y, footer.height) == (SIZE[1] - 1, 1)
        assert table.width == SIZE[0] and table.y > header.y and table.bottom <= footer.y
        assert table.height >= SIZE[1] - 6
        app.theme = "textual-light"
        await pilot.press("t")
        assert app.theme == "textual-dark"
        close_app_lab(app)
