"""The Bench screen with Pilot against the session's shared CPU vLLM server: `b` on a server
opens it, a bad parameter is named before anything is sent, a bench shows its progress, every
figure beside the previous bench, each target passed or failed, and the row's verdict."""

from __future__ import annotations

import pytest
from sharedserver import SharedServer
from test_console_support import SIZE, close_app_lab, on_screen, opened, shown_text, wait_for
from textual.widgets import DataTable, Input, Static

from llmops.console.app import LlmopsApp
from llmops.console.screens.bench import BenchScreen, bench_params
from llmops.console.screens.resource_verbs import ResourceVerbs

pytestmark = [pytest.mark.vllm]


def test_form_text_to_parameters() -> None:
    params = bench_params({"requests": "5", "rate": "", "concurrency": "2", "dataset": " "})
    assert (params.requests, params.rate, params.concurrency) == (5, None, 2)
    with pytest.raises(ValueError, match="rate"):
        bench_params({"rate": "-3"})


async def test_bench_screen_runs_and_compares(shared_server: SharedServer) -> None:
    app = LlmopsApp(shared_server.lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        assert app.main is not None
        view = app.main.view("servers")
        assert isinstance(view, ResourceVerbs)
        await wait_for(pilot, lambda: view.loaded and view.selected is not None,
                       what="the servers")
        await pilot.press("b")
        screen = await on_screen(pilot, BenchScreen)
        assert screen.spec.name == shared_server.name
        table = screen.query_one("#bench-table", DataTable)
        line = screen.query_one("#bench-line", Static)
        for name, value in (("requests", "4"), ("concurrency", "2"), ("input_len", "16"),
                            ("output_len", "8"), ("warmup", "0"), ("rate", "-1")):
            screen.query_one(f"#bench-{name}", Input).value = value
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "rate" in shown_text(line) and not screen.running  # named, nothing sent
        screen.query_one("#bench-rate", Input).value = ""
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.done is not None, limit=120, what="the bench")
        assert screen.done is not None and screen.done.error is None, screen.done
        row = screen.done.row
        assert row is not None and row["figures"]["completed"] == 4
        said = shown_text(line)
        assert said.startswith(row["verdict"].upper()) and "stored" in said
        verdicts = shown_text(screen.query_one("#bench-verdicts", Static))
        assert "first-token p95" in verdicts and "output" in verdicts
        assert ("PASS" in verdicts) or ("FAIL" in verdicts)
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        for label in ("TTFT p95 ms", "TPOT median ms", "ITL p99 ms", "e2e mean ms",
                      "output tok/s", "goodput req/s", "verdict"):
            assert label in labels, labels
        # a second bench: the first is now the previous one, side by side
        first = row
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.done is not None and screen.done.row is not first,
                       limit=120, what="the second bench")
        # beside it: the newest bench of another spec version (earlier tests on the shared
        # server benched it at other commits), else the bench just before (rollback/benches.py)
        assert app.context is not None and screen.done.row is not None
        second = screen.done.row
        stored = app.context.engine.benches(shared_server.name, 200)
        other = next((r for r in stored if r["spec_commit"] != second["spec_commit"]), None)
        expected = other or first
        assert screen.before is not None and screen.before["id"] == expected["id"], (
            screen.before["id"] if screen.before else None, expected["id"], first["id"])
        completed = table.get_row_at(labels.index("completed"))
        assert str(completed[1]) == str(expected["figures"]["completed"])  # "previous"
        assert str(completed[2]) == "4"  # "this"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, BenchScreen), what="back")
        await wait_for(pilot, lambda: (view.rows[shared_server.name].summary or {}).get(
            "last_verdict") is not None, limit=60, what="the row's verdict")
        close_app_lab(app)
