"""Changing a host keeps what was not asked to change (user5's console walk, R4): `host add`
on an existing host used to build the spec from the options given only, so setting a cost
reset the host's python to `python3`; and the Hosts view had no edit, so the console could not
set a cost at all (the bench then said `no cost: set the host's cost_per_hour`)."""

from __future__ import annotations

import sys
from pathlib import Path

from labtools import llmops_json, local_host_lab
from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    host_state,
    hosts_view,
    on_screen,
    opened,
    wait_for,
)
from textual.widgets import Input

from llmops.console.app import LlmopsApp
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.lab import Lab


def host_spec(lab: Path) -> dict[str, object]:
    return llmops_json(lab, "host", "show", "local")["spec"]


async def test_host_add_again_keeps_the_fields_not_given_and_the_console_edits(
        tmp_path: Path) -> None:
    lab = local_host_lab(tmp_path)
    llmops_json(lab, "host", "add", "local", "--cost-per-hour", "2")
    spec = host_spec(lab)
    assert spec["cost_per_hour"] == 2 and spec["python"] == sys.executable
    assert spec["workdir"] == str(tmp_path / "work") and spec["local"] is True

    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        hosts_view(app).query_one(ResourceTable).select_key("local")
        assert "edit" in footer_keys(app)
        await pilot.press("e")
        form = await on_screen(pilot, SpecFormScreen)
        assert form.query_one("#field-python", Input).value == sys.executable  # prefilled
        form.query_one("#field-cost_per_hour", Input).value = "3.5"
        await wait_for(pilot, lambda: form.spec is not None, what=f"a spec {form.problems}")
        await pilot.press("ctrl+s")
        assert app.context is not None
        context = app.context

        def edited() -> bool:
            found = context.lab.read_spec("host", "local")
            return found is not None and getattr(found, "cost_per_hour", None) == 3.5

        await wait_for(pilot, edited, 60, "the host's cost changed")
        close_app_lab(app)
    reread = Lab(lab)
    try:
        found = reread.read_spec("host", "local")
        assert found is not None and found.model_dump()["python"] == sys.executable
    finally:
        reread.close()
