"""The console in an 80x24 terminal, the size a newcomer's SSH session often has: what an
operator needs stays on screen. Before: the footer had no room for `? Help` and `q Quit`, the
header's READ-ONLY badge and host count went past column 80 (a held lock pushed them further),
the Hosts/Servers/Runs forms had their Create/Start button below the last row, and every empty
view's box was cut at its right edge."""

from __future__ import annotations

from pathlib import Path

from test_console_support import (
    close_app_lab,
    host_state,
    lab_with,
    local_host,
    on_screen,
    opened,
    wait_for,
)
from textual.widgets import Button

from llmops.console.app import LlmopsApp
from llmops.console.screens.dialogs import ConfirmScreen, HelpScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.header import LabHeader
from llmops.rollback.lab import Lab

NARROW = (80, 24)


def header_line(app: LlmopsApp) -> str:
    assert app.main is not None
    return app.main.query_one(LabHeader).render().plain


async def test_header_keeps_read_only_lock_hosts_and_the_keys_at_80_columns(
        tmp_path: Path) -> None:
    path = lab_with(tmp_path / "a-lab-folder-with-a-rather-long-name" / "lab",
                    local_host(tmp_path))
    app = LlmopsApp(path, read_only=True)
    other = Lab(path, create=False)  # another llmops holds the lock: its line is the longest
    async with app.run_test(size=NARROW) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        await wait_for(pilot, lambda: "hosts up 1/1" in header_line(app), what="the count")
        shown = header_line(app)
        assert len(shown) <= NARROW[0], shown
        assert "READ-ONLY" in shown and "? help" in shown and "q quit" in shown, shown
        with other.lock.hold("llmops server up tiny --host local --model /srv/models/tiny"):
            await wait_for(pilot, lambda: "lock: pid" in header_line(app), what="the lock")
            shown = header_line(app)
            assert len(shown) <= NARROW[0], shown
            for part in ("READ-ONLY", "lock: pid", "hosts up 1/1", "? help", "q quit"):
                assert part in shown, (part, shown)
        await pilot.press("2")  # an empty view: its box within the 80 columns
        box = app.main.view("servers").query_one(".empty-state")  # type: ignore[union-attr]
        await wait_for(pilot, lambda: box.display and box.region.width > 0, what="empty state")
        assert box.region.right <= NARROW[0], box.region
        await pilot.press("question_mark")  # what the header says works
        await on_screen(pilot, HelpScreen)
        await pilot.press("q")
        await on_screen(pilot, MainScreen)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the console closing")
    other.close()
    close_app_lab(app)


async def test_forms_and_confirms_keep_their_buttons_on_screen_at_80x24(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=NARROW) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        for view, key in (("1", "a"), ("2", "n"), ("3", "n")):
            await pilot.press(view, key)
            form = await on_screen(pilot, SpecFormScreen)
            for button in form.query(Button):
                region = button.region
                assert region.height == 3 and region.bottom <= NARROW[1], (view, button.id,
                                                                           region)
            await pilot.press("escape")
            await on_screen(pilot, MainScreen)
        await pilot.press("1", "d")  # remove local: the confirm's buttons too
        confirm = await on_screen(pilot, ConfirmScreen)
        assert confirm.query_one("#yes", Button).region.bottom <= NARROW[1]
        await pilot.press("n")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)
