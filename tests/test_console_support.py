"""Helpers for the console's Pilot tests: a real lab in tmp_path, waiting without sleeping."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from llmops.console.app import LlmopsApp
from llmops.console.screens.history import HistoryView
from llmops.console.screens.resource_view import ResourceView
from llmops.ops.kinds.host import HostSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

SIZE = (120, 40)


def local_host(tmp: Path, name: str = "local", **changes: Any) -> HostSpec:
    return HostSpec.model_validate(
        {"name": name, "local": True, "python": sys.executable, "workdir": str(tmp / f"w-{name}")}
        | changes)


def lab_with(path: Path, *specs: HostSpec, act: bool = True) -> Path:
    """A lab holding these hosts: as actions (probed), or as committed files (not probed)."""
    lab = Lab(path)
    engine = Engine(lab)
    try:
        for spec in specs:
            if act:
                record = engine.act([Change("host", spec.name, spec)], f"host {spec.name} added")
                assert record.status == "succeeded", record
            else:
                rel = lab.write_spec("host", spec.name, spec)
                lab.commit(f"hand edit: host {spec.name}", [rel])
    finally:
        engine.close()
        lab.close()
    return path


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], limit: float = 30.0,
                   what: str = "condition") -> None:
    """Let the app run until `condition()` holds (checked every few frames)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await pilot.pause(0.02)


async def on_screen(pilot: Pilot[Any], screen_type: type, limit: float = 30.0) -> Any:
    """Wait until the top screen is a mounted `screen_type`; returns it."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type) and app.screen.is_mounted,
                   limit, screen_type.__name__)
    await pilot.pause()
    return app.screen


async def opened(pilot: Pilot[Any]) -> LlmopsApp:
    app = pilot.app
    assert isinstance(app, LlmopsApp)
    await wait_for(pilot, lambda: app.main is not None and app.main.is_mounted, 20, "the lab")
    await pilot.pause()
    return app


def hosts_view(app: LlmopsApp) -> ResourceView:
    assert app.main is not None
    view = app.main.view("hosts")
    assert isinstance(view, ResourceView) and view.presenter.kind == "host"
    return view


def history_view(app: LlmopsApp) -> HistoryView:
    assert app.main is not None
    view = app.main.view("history")
    assert isinstance(view, HistoryView)
    return view


def host_state(app: LlmopsApp, name: str) -> str | None:
    state = hosts_view(app).rows.get(name)
    return state.state if state else None


def footer_keys(app: LlmopsApp) -> set[str]:
    """The actions the footer offers on the current screen (enabled or dimmed)."""
    return {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}


APPS_TO_CLOSE: list[LlmopsApp] = []
"""Apps whose lab and engine conftest's `close_console_labs` closes once the test is over."""


def close_app_lab(app: LlmopsApp) -> None:
    """The app's lab and engine are closed after the test, once the app has exited (as
    `run_console` does after `app.run()`): closed inside `run_test`, a handler still running
    at shutdown read a closed lab and failed a test in CI."""
    APPS_TO_CLOSE.append(app)


def close_apps_labs() -> None:
    while APPS_TO_CLOSE:
        app = APPS_TO_CLOSE.pop()
        if app.context is not None:
            app.context.engine.close()
            app.context.lab.close()


def shown_text(widget: Any, width: int = 200) -> str:
    """The plain text a Static or Label shows (rich renderables rendered at `width`)."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()
