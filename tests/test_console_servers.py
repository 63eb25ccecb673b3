"""Servers view with Pilot: the empty state and form without vLLM; then one real vLLM server
(the CPU build, a tiny model made here) walked through telemetry, logs, an edit and its
rollback, read-only, a SIGKILL seen as a crash, and a restart.

The vLLM tests share one server (each start costs ~30 s on two cores) and run in order."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from realparts import require_vllm
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
from textual.widgets import Input, Label, Sparkline, Static

from llmops.console.app import LlmopsApp
from llmops.console.presenters.server import POLL_INTERVAL, ServerPresenter
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.logs import LogScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.rollback import RollbackScreen
from llmops.console.screens.spec_form import SpecFormScreen, spec_from_form
from llmops.console.widgets.table import ResourceTable
from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.transport import LocalTransport
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

CHANGING = {"new", "edit", "stop", "restart", "rollback"}
PORT = 18271
SLOW = 600  # seconds a vLLM start may take on a busy shared box (one took 350 s at load 25)


def servers_view(app: LlmopsApp) -> ResourceVerbs:
    assert app.main is not None
    view = app.main.view("servers")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "server"
    return view


# --- without vLLM ---------------------------------------------------------------------------


async def test_empty_state_says_how_to_make_one(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path))
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: view.loaded, what="the servers")
        empty = view.query_one("#servers-empty", Static)
        assert empty.display and not view.query_one(ResourceTable).display
        text = shown_text(empty)
        assert "llmops server up NAME --host H --model M" in text and "Press [b]n[/b]" in text
        assert "new" in footer_keys(app)
        assert view.check_action("edit", ()) is None  # nothing selected: dimmed
        close_app_lab(app)


def server_from_form(values: dict[str, str | bool], base: ServerSpec | None,
                     hosts: list[str]) -> tuple[Any, dict[str, str]]:
    """The server form's validation, as it runs on every key (the fields from ServerSpec)."""
    return spec_from_form(ServerSpec, ServerPresenter.form, values, base, {"host": hosts})


def test_form_validates_as_you_type() -> None:
    values = {"name": "qwen", "host": "gpu-9", "model": "not a model", "tp": "16", "pp": "",
              "gpus": "", "port": "80"}
    spec, problems = server_from_form(values, None, ["local"])
    assert spec is None
    assert "no host named gpu-9" in problems["host"]
    assert "neither a hub id" in problems["model"]
    assert "tp" in problems and "port" in problems
    spec, problems = server_from_form(
        {"name": "qwen", "host": "local", "model": "Qwen/Qwen2.5-0.5B", "tp": "2",
         "gpus": "0, 1", "max_model_len": ""}, None, ["local"])
    assert problems == {} and spec is not None and spec.gpus == [0, 1] and spec.tp == 2
    edited, problems = server_from_form({"max_model_len": "128"}, spec, ["local"])
    assert edited is not None and edited.max_model_len == 128 and edited.gpus == [0, 1]


async def test_new_server_form_and_intro(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path))
    app = LlmopsApp(lab, intro="1. watch the telemetry\n2. change max_model_len\n3. ctrl+z")
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        assert app.main is not None
        intro = app.main.query_one("#intro", Static)
        assert "watch the telemetry" in shown_text(intro) and intro.display
        await pilot.press("f2")
        assert not intro.display
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: view.loaded, what="the servers")
        await pilot.press("n")
        form = await on_screen(pilot, SpecFormScreen)
        assert form.query_one("#field-host", Input).value == "local"  # the only host
        form.query_one("#field-name", Input).value = "tiny"
        form.query_one("#field-model", Input).value = "no-slash"
        await wait_for(pilot, lambda: "neither" in shown_text(form.query_one("#error-model")))
        assert form.spec is None
        form.query_one("#field-model", Input).value = "/models/tiny"
        form.query_one("#field-tp", Input).value = "0"
        await wait_for(pilot, lambda: shown_text(form.query_one("#error-tp", Label)).strip())
        form.query_one("#field-tp", Input).value = "1"
        await wait_for(pilot, lambda: form.spec is not None, what="a valid spec")
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)


async def test_a_dead_host_degrades_its_own_row_only(tmp_path: Path) -> None:
    """Hand-written specs (no action, nothing started): one server on this machine, one on
    a host whose SSH port refuses. The first reads stopped, the second unreachable, greyed."""
    lab_path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(lab_path)
    gone = HostSpec(name="gone", address="127.0.0.1", port=1)
    for kind, name, spec in (
            ("host", "gone", gone),
            ("server", "here", ServerSpec(name="here", host="local", model="org/m", port=18281)),
            ("server", "there", ServerSpec(name="there", host="gone", model="org/m"))):
        lab.commit(f"hand edit: {kind} {name}", [lab.write_spec(kind, name, spec)])
    lab.close()
    app = LlmopsApp(lab_path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: row_state(view, "here") == "stopped"
                       and row_state(view, "there").startswith("unreachable"), 30, "both rows")
        table = view.query_one(ResourceTable)
        assert table.row_count == 2
        there = table.get_row("there")
        assert "grey50" in str(there[0].spans) and "unreachable" in there[4].plain
        assert table.get_row("here")[0] == "here"  # a plain string: not greyed
        assert view.rows["there"].sample is not None and not view.rows["there"].sample.up
        close_app_lab(app)


# --- one real vLLM server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServerSpec]]:
    """A lab with host `local` and server `tiny` up (as actions); removed at the end."""
    require_vllm(module=False)  # reported skip; a failure in CI or with a broken install
    tmp = tmp_path_factory.mktemp("servers-view")
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(tmp / "wd"))
    model = tmp / "tiny"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    LocalTransport(host).python_script(source, [str(model)], timeout=300).check()
    spec = ServerSpec(name="tiny", host="local", model=str(model), dtype="float32",
                      max_model_len=256, port=PORT, cpu_kvcache_gib=1, cpu_inline_worker=True,
                      args={"enforce-eager": True}, target_ttft_p95_ms=10_000,
                      target_output_tps=1)
    lab_path = tmp / "lab"
    lab = Lab(lab_path)
    engine = Engine(lab)
    try:
        assert engine.act([Change("host", "local", host)], "host local added").status == \
            "succeeded"
        record = engine.act([Change("server", "tiny", spec)], "server tiny up")
        assert record.status == "succeeded", record.error
    finally:
        engine.close()
        lab.close()
    yield lab_path, spec
    lab = Lab(lab_path)
    engine = Engine(lab)
    try:
        engine.act([Change("server", "tiny", None)], "server tiny down")
        procs.stop(engine.hosts.transport("local"), "tiny", grace=5)  # leftovers of a kill
    finally:
        engine.close()
        lab.close()


def send_completions(spec: ServerSpec, n: int = 6) -> None:
    """A few requests through the same kind of forward the console uses (run in a thread)."""
    transport = LocalTransport(HostSpec(name="local", local=True, python=sys.executable))
    with transport.forward(spec.port) as local, \
            VllmClient(f"http://127.0.0.1:{local}", spec.api_model()) as client:
        for _ in range(n):
            assert client.completion("Hello there", max_tokens=24).tokens == 24


def row_state(view: ResourceVerbs, name: str = "tiny") -> str:
    state = view.rows.get(name)
    return state.state if state else "?"


@pytest.mark.vllm
@pytest.mark.timeout(1500)
async def test_up_with_telemetry_sparklines_and_logs(served_lab: tuple[Path, ServerSpec]) -> None:
    lab_path, spec = served_lab
    app = LlmopsApp(lab_path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: row_state(view) == "up", 60, "tiny up")
        sender = asyncio.create_task(asyncio.to_thread(send_completions, spec))
        state = view.rows["tiny"]
        await wait_for(pilot, lambda: any((s.get("generation_tps") or 0) > 0 for s in state.recent),
                       90, "tokens/s in the telemetry")
        await sender
        table = view.query_one(ResourceTable)
        await wait_for(pilot, lambda: table.get_row("tiny")[5] != "-", 30, "tok/s in the row")
        assert [str(c) for c in table.get_row("tiny")[:4]] == ["tiny", "local", "tiny", "1/1"]
        assert max(view.query_one("#spark-tps", Sparkline).data or [0]) > 0
        kv = view.query_one("#spark-kv", Sparkline).data or []
        assert all(0 <= v <= 100 for v in kv), kv  # a percentage (empty while all zero)
        assert "max_model_len 256" in shown_text(view.query_one("#detail-title", Label))
        assert not view.query_one("#detail-crash").display

        await pilot.press("l")
        logs = await on_screen(pilot, LogScreen)
        await wait_for(pilot, lambda: len(logs.lines) > 0, 30, "log lines")
        assert any("Uvicorn" in line or "Started server" in line or "INFO" in line
                   for line in logs.lines)
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)


@pytest.mark.vllm
async def test_read_only_hides_changing_keys(served_lab: tuple[Path, ServerSpec]) -> None:
    app = LlmopsApp(served_lab[0], read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: row_state(view) == "up", 60, "tiny up")
        shown = footer_keys(app)
        assert "logs" in shown and not shown & CHANGING
        assert all(view.check_action(a, ()) is False for a in CHANGING)
        assert not {b.action for b in type(view).declared_bindings(True)} & CHANGING
        close_app_lab(app)


@pytest.mark.vllm
@pytest.mark.timeout(1500)
async def test_edit_then_ctrl_z_rolls_back(served_lab: tuple[Path, ServerSpec]) -> None:
    app = LlmopsApp(served_lab[0])
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: row_state(view) == "up", 60, "tiny up")
        await pilot.press("e")
        form = await on_screen(pilot, SpecFormScreen)
        assert form.query_one("#field-max_model_len", Input).value == "256"
        form.query_one("#field-max_model_len", Input).value = "128"
        await wait_for(pilot, lambda: form.spec is not None and form.spec.max_model_len == 128)
        await pilot.press("ctrl+s")
        await on_screen(pilot, MainScreen)
        state = view.rows["tiny"]
        await wait_for(pilot, lambda: state.busy is not None, 5, "the row shows the change")
        await wait_for(pilot, lambda: state.busy is None, SLOW, "the edit to finish")
        await wait_for(pilot, lambda: view.rows["tiny"].spec.max_model_len == 128, 30)
        assert app.context is not None
        edit = app.context.lab.journal.actions()[-1]
        assert edit.status == "succeeded" and "max_model_len 256→128" in edit.summary
        await wait_for(pilot, lambda: view.last_action.get("tiny", (0, ""))[0] == edit.id, 30)

        await pilot.press("ctrl+z")
        confirm = await on_screen(pilot, ConfirmScreen)
        assert f"action {edit.id}" in shown_text(confirm.query_one("#confirm-body"))
        await pilot.press("y")
        live = await on_screen(pilot, RollbackScreen)
        await wait_for(pilot, lambda: live.verdict is not None or live.error, SLOW, "verdict")
        assert live.error is None and live.verdict is not None
        verdict = shown_text(live.query_one("#verdict", Label))
        assert verdict.startswith("✓ rolled back in"), verdict
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        await wait_for(pilot, lambda: view.rows["tiny"].spec.max_model_len == 256, 30)
        await wait_for(pilot, lambda: row_state(view) == "up", 60, "tiny up again")
        close_app_lab(app)


@pytest.mark.vllm
@pytest.mark.timeout(1500)
async def test_sigkill_is_a_crash_within_a_poll_then_restart(
        served_lab: tuple[Path, ServerSpec]) -> None:
    app = LlmopsApp(served_lab[0])
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: row_state(view) == "up", 60, "tiny up")
        assert app.context is not None
        transport = await asyncio.to_thread(app.context.engine.hosts.transport, "local")
        pid = (await asyncio.to_thread(procs.status, transport, "tiny")).pid
        assert pid
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await wait_for(pilot, lambda: row_state(view).startswith("crashed"), 60, "crashed")
        # One poll plus the observe it triggers: a figure to read, not a timed assertion (a
        # loaded CI box stretches a poll; its cost is measured in benchmarks/poll_cost.py).
        seen = time.monotonic() - killed
        print(f"crash seen {seen:.1f} s after the kill (poll every {POLL_INTERVAL} s)")
        crash = view.query_one("#detail-crash", Static)
        await wait_for(pilot, lambda: crash.display, 10, "the crash box")
        text = shown_text(crash)
        assert "last log lines" in text and "ctrl+z rolls back the last action" in text
        assert view.check_action("rollback", ()) is True

        await asyncio.to_thread(procs.stop, transport, "tiny", 5)  # the orphaned engine core
        await pilot.press("R")
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await on_screen(pilot, MainScreen)
        state = view.rows["tiny"]
        await wait_for(pilot, lambda: state.busy is None and row_state(view) == "up", SLOW,
                       "restarted and up")
        assert not crash.display
        close_app_lab(app)


@pytest.mark.vllm
def test_the_restart_is_journalled(served_lab: tuple[Path, ServerSpec]) -> None:
    """The row's R went through the engine: the journal says who restarted tiny and when,
    its checklist passed, the chain and its anchors hold, and ctrl+z would pass over it."""
    lab = Lab(served_lab[0])
    engine = Engine(lab)
    try:
        restarts = [a for a in lab.journal.touching([("server", "tiny")]) if a.kind == "restart"]
        assert restarts, "no restart in the journal"
        restart = restarts[-1]
        assert restart.status == "succeeded" and restart.checks and restart.checks_passed
        assert restart.who and restart.started_at and restart.summary == "server tiny restarted"
        assert [s.verb for s in restart.steps] == ["restart"]
        assert lab.verify() == []
        undoable = engine.last_undoable("server", "tiny")
        assert undoable is not None and undoable.id < restart.id
    finally:
        engine.close()
        lab.close()
