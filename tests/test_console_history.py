"""History: diff and journal of an action; ctrl+z -> confirm -> live rollback -> new action."""

from __future__ import annotations

from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    history_view,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Label

from llmops.console.app import LlmopsApp
from llmops.console.screens.action_detail import ActionDetailScreen
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.rollback import RollbackScreen
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.lab import Lab


async def test_rollback_from_history_live(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path), local_host(tmp_path, "gpu-2"))
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("6")
        view = history_view(app)
        table = view.query_one(ResourceTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="two actions")
        assert table.selected_key == "2"  # newest first

        await pilot.press("enter")
        detail = await on_screen(pilot, ActionDetailScreen)
        await wait_for(pilot, lambda: detail.diff is not None, what="the diff")
        assert "+++ b/hosts/gpu-2.toml" in detail.diff
        journal = shown_text(detail.query_one("#journal"))
        assert "probe" in journal and "reachable" in journal
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)

        await pilot.press("ctrl+z")
        confirm = await on_screen(pilot, ConfirmScreen)
        body = shown_text(confirm.query_one("#confirm-body"))
        assert "host gpu-2: removed" in body and "expected time" in body
        assert "local" not in body.split("expected time")[0].replace("localhost", "")
        await pilot.press("y")
        live = await on_screen(pilot, RollbackScreen)
        await wait_for(pilot, lambda: live.verdict is not None or live.error, what="verdict")
        assert live.error is None and live.verdict is not None
        assert live.seen == ["step host/gpu-2 disconnect"]
        verdict = shown_text(live.query_one("#verdict", Label))
        assert verdict.startswith("✓ rolled back in") and live.verdict.rollback_of == 2
        assert "elapsed" in shown_text(live.query_one("#elapsed", Label))
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        await wait_for(pilot, lambda: table.row_count == 3, what="the rollback in History")
        assert view.actions[3].rollback_of == 2 and view.actions[3].status == "succeeded"
        assert view.actions[2].display_status == "rolled back"
        close_app_lab(app)


async def test_rollback_dimmed_for_a_reverted_action_and_cancel(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path))
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("6")
        view = history_view(app)
        await wait_for(pilot, lambda: view.query_one(ResourceTable).row_count == 1, what="rows")
        assert view.check_action("rollback", ()) is True
        await pilot.press("ctrl+z")
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("n")
        await on_screen(pilot, MainScreen)
        assert app.context is not None and len(app.context.lab.journal.actions()) == 1
        close_app_lab(app)


async def test_interrupted_action_is_announced_and_offered(tmp_path: Path) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)  # a console that died mid-action left a `started` row
    lab.journal.append(2, "started", {"kind": "apply", "summary": "host x added", "who": "t",
                                      "refs": [["host", "x"]], "before_commit": lab.head()})
    lab.close()
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)
        assert app.interrupted == [2]
        view = history_view(app)
        table = view.query_one(ResourceTable)
        await wait_for(pilot, lambda: table.selected_key == "2", what="interrupted selected")
        assert view.actions[2].status == "interrupted"

        def toasts() -> str:
            return " ".join(str(t.render()) for t in app.screen.query("Toast"))

        await wait_for(pilot, lambda: "interrupted" in toasts(), what="the notification")
        assert "ctrl+z" in toasts()
        assert view.check_action("rollback", ()) is True
        close_app_lab(app)
