"""A kind the console has never heard of gets its whole view from a presenter and one registry
line: table, filter, polling, empty state, detail pane, keys from its capabilities, the form
from its spec model, its log screen and ctrl+z; a row whose host does not answer backs off.
The kind is tests/testkinds.py's sleeper, given a log and a state (HasLogs, Summarizes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from testkinds import SleeperKind, SleeperSpec, proc_name
from textual.widgets import Input, Label, Static, Switch

from llmops.console.app import LlmopsApp
from llmops.console.screens import registry
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.logs import LogScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.presenter import Presenter
from llmops.console.screens.resource_poll import RowState, backoff
from llmops.console.screens.resource_verbs import ResourceVerbs, resource_view
from llmops.console.screens.spec_form import FormLayout, SpecFormScreen
from llmops.console.specs import spec_fields
from llmops.console.widgets.table import ResourceTable
from llmops.ops import procs
from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Sample, Spec
from llmops.ops.kinds.host import HostSpec
from llmops.ops.transport import LocalTransport
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab


class TailedSleeper(SleeperKind):
    """The sleeper with a log (its process's) and a state in a word."""

    def logs(self, spec: Spec, hosts: HostPool, lines: int = 100) -> list[str]:
        assert isinstance(spec, SleeperSpec)
        return procs.tail(hosts.transport(spec.host), proc_name(spec), lines)

    def status(self, spec: Spec, hosts: HostPool, answering: bool | None = None) -> str:
        assert isinstance(spec, SleeperSpec)
        running = procs.status(hosts.transport(spec.host), proc_name(spec)).running
        return "up" if running else "stopped"

    def summary(self, spec: Spec, status: str, latest: Sample | None) -> dict[str, Any]:
        return {"name": spec.name, "state": status}


class SleeperPresenter(Presenter):
    """All a new kind writes for its view (besides the registry line)."""

    kind = "sleeper"
    columns = ("name", "state", "host", "seconds")
    form = FormLayout(refs={"host": "host"})
    what = "Sleeps on your hosts appear here."
    cli = "llmops sleeper up NAME --host H"
    pane = True

    def cells(self, row: RowState) -> list[Any]:
        spec = row.spec
        assert isinstance(spec, SleeperSpec)
        return [spec.name, self.state_cell(row), spec.host, str(spec.seconds)]


@pytest.fixture
def sleepers_view(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ResourceVerbs]]:
    """The kind in the engine's registry and its view in the console's, for one test."""
    monkeypatch.setitem(KINDS, "sleeper", TailedSleeper())
    view = resource_view(SleeperPresenter())
    registry.VIEWS.append(view)  # main.py and the palette read this very list
    try:
        yield view  # type: ignore[misc]
    finally:
        registry.VIEWS.remove(view)


async def view_of(pilot: Any) -> ResourceVerbs:
    """The Sleepers tab (it has no number key: MainScreen's are made at import), shown."""
    app = pilot.app
    assert app.main is not None
    app.show_view("sleepers")
    await pilot.pause()
    view = app.main.view("sleepers")
    assert isinstance(view, ResourceVerbs)
    return view


def test_keys_follow_the_capabilities(sleepers_view: type[ResourceVerbs]) -> None:
    ids = [b.id for b in sleepers_view.declared_bindings()]
    assert ids == ["sleepers.new", "sleepers.edit", "sleepers.remove", "sleepers.logs",
                   "sleepers.rollback"]  # no restart, no bench: the kind has neither
    assert all(b.tooltip for b in sleepers_view.declared_bindings())
    assert [b.action for b in sleepers_view.declared_bindings(read_only=True)] == ["logs"]
    assert [backoff(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


async def test_empty_state_says_how(tmp_path: Path, sleepers_view: type[ResourceVerbs]) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = await view_of(pilot)
        await wait_for(pilot, lambda: view.loaded, what="the sleepers")
        empty = view.query_one("#sleepers-empty", Static)
        assert empty.display and not view.query_one(ResourceTable).display
        text = shown_text(empty)
        assert "No sleepers yet" in text and "Press [b]n[/b]" in text
        assert "llmops sleeper up NAME --host H" in text
        close_app_lab(app)


async def test_rows_filter_pane_logs_and_ctrl_z(tmp_path: Path,
                                              sleepers_view: type[ResourceVerbs]) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    engine = Engine(lab)
    try:
        started = engine.act([Change("sleeper", "s2", SleeperSpec(name="s2", host="local"))],
                             "sleeper s2 added")
        assert started.ok, started.error
        idle = SleeperSpec(name="s1", host="local", seconds=5)
        lab.commit("hand edit: sleeper s1", [lab.write_spec("sleeper", "s1", idle)])
    finally:
        engine.close()
        lab.close()
    app = LlmopsApp(path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await opened(pilot)
            view = await view_of(pilot)
            await wait_for(pilot, lambda: {n: r.state for n, r in view.rows.items()}
                           == {"s1": "stopped", "s2": "up"}, 30, "both observed")
            table = view.query_one(ResourceTable)
            assert table.row_count == 2 and table.get_row("s2")[2:] == ["local", "600"]
            assert {"new", "edit", "remove", "logs", "rollback"} <= footer_keys(app)
            assert not {"restart", "bench"} & footer_keys(app)

            view.set_filter("s2")
            assert table.row_count == 1
            view.set_filter("")
            table.select_key("s1")
            await pilot.pause()
            crash = view.query_one("#detail-crash", Static)
            assert crash.display and "s1 is stopped" in shown_text(crash)
            assert "ctrl+z" not in shown_text(crash)  # a hand edit: no action to roll back
            assert view.check_action("rollback", ()) is None
            table.select_key("s2")
            await pilot.pause()
            assert not crash.display
            assert "s2" in shown_text(view.query_one("#detail-title", Label))

            await pilot.press("l")
            logs = await on_screen(pilot, LogScreen)
            assert "log of sleeper s2 on local" in shown_text(logs.query_one(".screen-title"))
            await pilot.press("escape")
            await on_screen(pilot, MainScreen)

            await pilot.press("ctrl+z")
            confirm = await on_screen(pilot, ConfirmScreen)
            assert f"action {started.id}" in shown_text(confirm.query_one("#confirm-body"))
            await pilot.press("n")
            await on_screen(pilot, MainScreen)
            close_app_lab(app)
    finally:
        procs.stop(LocalTransport(local_host(tmp_path)), "sleeper-s2", grace=1)


async def test_form_from_the_spec_model_and_a_dead_host_backs_off(
        tmp_path: Path, sleepers_view: type[ResourceVerbs]) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    for kind, name, spec in (
            ("host", "gone", HostSpec(name="gone", address="127.0.0.1", port=1)),
            ("sleeper", "far", SleeperSpec(name="far", host="gone"))):
        lab.commit(f"hand edit: {kind} {name}", [lab.write_spec(kind, name, spec)])
    lab.close()
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = await view_of(pilot)
        await wait_for(pilot, lambda: "far" in view.rows and view.rows["far"].failures >= 1,
                       30, "far unreachable")
        row = view.rows["far"]
        assert row.state == "unreachable" and row.reason
        assert row.next_poll_at is not None  # the next try, after the back-off
        await pilot.pause(1.1)  # the countdown is repainted every second
        cells = view.query_one(ResourceTable).get_row("far")
        assert "retry in" in cells[1].plain and "grey50" in str(cells[0].spans)

        await pilot.press("n")
        form = await on_screen(pilot, SpecFormScreen)
        shown = [f.name for f in form.fields]
        assert shown == [f.name for f in spec_fields(SleeperSpec)]  # every field the model has
        assert isinstance(form.query_one("#field-fail_start"), Switch)
        assert "600" in form.query_one("#field-seconds", Input).placeholder
        form.query_one("#field-name", Input).value = "s3"
        form.query_one("#field-host", Input).value = "nowhere"
        await wait_for(pilot, lambda: "no host named nowhere" in form.problems.get("host", ""))
        form.query_one("#field-host", Input).value = "local"
        await wait_for(pilot, lambda: form.spec is not None, what="a valid spec")
        await pilot.press("escape")
        close_app_lab(app)

