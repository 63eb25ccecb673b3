"""Before a change of something that exists, the console says whether it could be put back,
and how long that took before (issue 13 item 8), without holding the edit up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_console_support import (
    SIZE,
    close_app_lab,
    host_state,
    hosts_view,
    lab_with,
    local_host,
    on_screen,
    opened,
    wait_for,
)

from llmops.console.app import LlmopsApp
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.widgets.table import ResourceTable


def toasts(app: LlmopsApp) -> list[Any]:
    return list(app._notifications)


async def test_a_removal_shows_rollback_readiness_first(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path, "spare")))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "spare") == "up", what="spare up")
        hosts_view(app).query_one(ResourceTable).select_key("spare")
        await pilot.press("d")  # hosts change by add/remove; any change of what exists
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(
            (n.title or "").startswith("rollback of host/spare: ready") for n in toasts(app)),
            what="the readiness toast")
        shown = next(n for n in toasts(app) if (n.title or "").startswith("rollback of"))
        assert "no rollback of this kind yet" in shown.message  # a fresh lab's journal
        assert app.context is not None
        await wait_for(pilot, lambda: "spare" not in hosts_view(app).rows, what="spare removed")
        close_app_lab(app)
