"""What a new operator's walk of the console found (AUDIT-user5): a resource being created was
invisible ("No sleepers yet. Press n") until the view's next reload, 10 s later; a server's log
screen showed nothing but the console's own /metrics polls once it had been up ten minutes; the
bench screen's parameters were bare numbers once filled in (their names were placeholders).
The kind is tests/testkinds.py's sleeper with a log (test_console_resource_view's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console_resource_view import SleeperPresenter, TailedSleeper, view_of
from test_console_support import (
    SIZE,
    close_app_lab,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from testkinds import SleeperSpec, proc_name
from textual.widgets import Input, RichLog

from llmops.console.app import LlmopsApp
from llmops.console.screens import registry
from llmops.console.screens.bench import FIELDS, LABELS, BenchScreen
from llmops.console.screens.logs import LogScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs, resource_view
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab


@pytest.fixture
def sleepers(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ResourceVerbs]]:
    """The sleeper kind and its view, reloading by timer only every 10 minutes: what shows a
    new row sooner is the action itself."""
    monkeypatch.setitem(KINDS, "sleeper", TailedSleeper())
    monkeypatch.setattr(SleeperPresenter, "reload_interval", 600.0)
    view = resource_view(SleeperPresenter())
    registry.VIEWS.append(view)
    try:
        yield view  # type: ignore[misc]
    finally:
        registry.VIEWS.remove(view)


async def test_a_new_resource_shows_while_its_action_runs(
        tmp_path: Path, sleepers: type[ResourceVerbs]) -> None:
    hold = tmp_path / "release"
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = await view_of(pilot)
        await wait_for(pilot, lambda: view.loaded, what="the sleepers")
        view.submitted(SleeperSpec(name="s1", host="local", hold=str(hold)), None)  # the form's
        await wait_for(pilot, lambda: app.own_action() is not None, what="the action's lock")
        try:
            await wait_for(pilot, lambda: "s1" in view.rows, what="the new row, action running")
            assert app.own_action() is not None  # still running: the start waits for `hold`
            assert view.rows["s1"].busy and not view.query_one("#sleepers-empty").display
        finally:
            hold.write_text("go")  # the action ends either way (a console waits for it)
        await wait_for(pilot, lambda: app.own_action() is None, what="the action's end")
        assert app.context is not None
        record = app.context.engine.lab.journal.actions(limit=1)[-1]
        assert record.status == "succeeded", record
        assert app.context.engine.rollback(record.id).ok  # the sleep stops
        close_app_lab(app)


async def test_the_log_screen_hides_answered_polls(tmp_path: Path,
                                                   sleepers: type[ResourceVerbs]) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    engine = Engine(lab)
    spec = SleeperSpec(name="s2", host="local")
    try:
        assert engine.act([Change("sleeper", "s2", spec)], "sleeper s2 added").ok
    finally:
        engine.close()
        lab.close()
    poll = 'INFO:     127.0.0.1:33592 - "GET /metrics HTTP/1.1" 200 OK'
    lines = ["INFO: Started server process", "ERROR: the one line that matters"]
    lines += [poll] * 900 + ['INFO:     127.0.0.1:40000 - "POST /v1/completions HTTP/1.1" 200 OK']
    lines += ['INFO:     127.0.0.1:33592 - "GET /health HTTP/1.1" 200 OK'] * 400
    log = tmp_path / "w-local" / "run" / proc_name(spec) / "log"
    with log.open("a") as out:
        out.write("\n".join(lines) + "\n")
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = await view_of(pilot)
        await wait_for(pilot, lambda: "s2" in view.rows, what="the row")
        await pilot.press("l")
        screen = await on_screen(pilot, LogScreen)
        richlog = screen.query_one(RichLog)

        def shown() -> str:
            return "\n".join(strip.text for strip in richlog.lines)

        await wait_for(pilot, lambda: "the one line that matters" in shown(), what="the log")
        text = shown()
        assert "GET /metrics" not in text and "GET /health" not in text
        assert "POST /v1/completions" in text  # a client's request is not a poll
        title = shown_text(screen.query_one("#log-title"))
        assert "1300 lines of answered polls hidden (a shows them)" in title, title
        await pilot.press("a")
        await wait_for(pilot, lambda: "GET /health" in shown(), what="the polls again")
        assert "answered polls shown" in shown_text(screen.query_one("#log-title"))
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        assert app.context is not None
        record = app.context.engine.lab.journal.actions(limit=1)[-1]
        assert app.context.engine.rollback(record.id).ok
        close_app_lab(app)


async def test_bench_fields_keep_their_names_once_filled(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=(200, 40)) as pilot:
        await opened(pilot)
        assert app.context is not None
        spec = ServerSpec(name="tiny", host="local", model="/srv/tiny")  # never started
        await app.push_screen(BenchScreen(app.context, spec))
        screen = await on_screen(pilot, BenchScreen)
        for name in FIELDS:
            field = screen.query_one(f"#bench-{name}", Input)
            assert field.border_title == LABELS[name], name
        field = screen.query_one("#bench-concurrency", Input)
        assert field.value and field.border_title == "in flight"  # filled, still named
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)
