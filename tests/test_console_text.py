"""The console shows text from specs, hosts and errors as it is: brackets in a model path
are neither markup nor a crash, in the table, the detail pane, a refusal's toast or a
form's error; and an interrupted action's toast names the process that died."""

from __future__ import annotations

import json
from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    lab_with,
    local_host,
    on_screen,
    opened,
    wait_for,
)
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input, Label

from llmops.console.app import LlmopsApp
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change
from llmops.rollback.lab import Lab

MODEL = "/models/llama[red]x"  # a valid absolute path; as markup, `x` in red


def drawn(widget: Widget) -> str:
    """What the widget puts on the screen now (markup already applied), line by line."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(line.text for line in lines)


def toasts(app: LlmopsApp) -> str:
    return " ".join(str(t.render()) for t in app.screen.query("Toast"))


def servers_view(app: LlmopsApp) -> ResourceVerbs:
    assert app.main is not None
    view = app.main.view("servers")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "server"
    return view


async def test_bracketed_model_path_in_table_detail_and_toast(tmp_path: Path) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    spec = ServerSpec(name="odd", host="local", model=MODEL, port=18395)
    lab.commit("hand edit: server odd", [lab.write_spec("server", "odd", spec)])
    lab.close()
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: "odd" in view.rows
                       and view.rows["odd"].state == "stopped", 30, "odd observed")
        await pilot.pause()
        assert "llama[red]x" in drawn(view.query_one(ResourceTable))  # the model cell
        assert MODEL in drawn(view.query_one("#detail-title", Label))

        wanted = spec.model_copy(update={"model": "/models/q[/x]"})
        view.act("odd", "changing", [Change("server", "odd", wanted)], "server odd changed")
        await wait_for(pilot, lambda: "is not a model folder" in toasts(app), 30, "the refusal")
        assert "/models/q[/x] on local" in toasts(app)
        close_app_lab(app)


async def test_form_error_keeps_the_pattern_brackets(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("a")
        form = await on_screen(pilot, SpecFormScreen)
        form.query_one("#field-name", Input).value = "h1"
        form.query_one("#field-local").value = False
        form.query_one("#field-address", Input).value = "10.213.1.1"
        form.query_one("#field-user", Input).value = "Bad User"
        await wait_for(pilot, lambda: "user" in form.problems, what="the user's problem")
        await pilot.pause()
        shown = form.query_one("#error-user", Label).visual.plain  # type: ignore[attr-defined]
        assert "'^[a-z_][a-z0-9_.-]{0,31}$'" in shown, shown
        await pilot.press("escape")
        close_app_lab(app)


async def test_interrupted_toast_names_the_dead_process(tmp_path: Path) -> None:
    """A killed `llmops host add` left its `started` row and its line in the lock file."""
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    lab.journal.append(2, "started", {"kind": "apply", "summary": "host x added", "who": "t",
                                      "refs": [["host", "x"]], "before_commit": lab.head()})
    holder = {"pid": 4242, "command": "llmops host add x --local", "since": "2026-01-01"}
    lab.lock.path.write_text(json.dumps(holder))
    lab.close()
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: "interrupted" in toasts(app), what="the notification")
        shown = toasts(app)
        assert "llmops (pid 4242, `llmops host add x --local`) died mid-action" in shown, shown
        assert "console died" not in shown
        close_app_lab(app)
