"""Runs in the console, driven with Pilot. First the generic parts with a cheap kind that works
in steps (tests/testkinds.py's ticker: a real process writing progress records, a report and a
log): the progress bar, the chart moving as the poll brings points, the report, the log tail,
and stop / resume as spec toggles (read-only offers neither). Then the real run kind: a real
trainer on the tiny model, its chart moving while it trains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from finetune_fixtures import text_rows, tiny_model_dir, write_rows
from test_console_screenshots import target
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
from testkinds import TickerKind, TickerSpec, ticker_proc
from textual.widgets import Input, Label, ProgressBar, Select, Static, Switch

from llmops.console.app import LlmopsApp
from llmops.console.messages import ActionDone
from llmops.console.presenters.run import RunPresenter
from llmops.console.presenters.run_words import eta_text, run_now, screening_text
from llmops.console.screens import registry
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.presenter import Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.resource_verbs import ResourceVerbs, resource_view
from llmops.console.screens.spec_form import FormLayout, SpecFormScreen
from llmops.console.widgets.loss_chart import LossChart, chart_series
from llmops.console.widgets.table import ResourceTable
from llmops.ops import procs
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.transport import LocalTransport
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab


class TickerPresenter(Presenter):
    """A presenter of a dozen lines: the run's toggles, chart, report and tail, reused."""

    kind = "ticker"
    columns = ("name", "state", "step/max")
    form = FormLayout(refs={"host": "host"})
    pane = True
    toggles = RunPresenter.toggles
    chart = RunPresenter.chart
    tail_lines = 4
    serving = RunPresenter.serving
    progress_bar = RunPresenter.progress_bar
    report_text = RunPresenter.report_text

    def cells(self, row: RowState) -> list[Any]:
        now = run_now(row.points)
        return [row.name, self.state_cell(row), f"{now.step}/{now.max_steps}"]


@pytest.fixture
def tickers_view(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ResourceVerbs]]:
    monkeypatch.setitem(KINDS, "ticker", TickerKind())
    view = resource_view(TickerPresenter())
    registry.VIEWS.append(view)
    try:
        yield view  # type: ignore[misc]
    finally:
        registry.VIEWS.remove(view)


# --- pure parts -------------------------------------------------------------------------------

POINTS = [
    {"event": "start", "max_steps": 10, "resumed_from": None},
    {"event": "log", "step": 2, "max_steps": 10, "loss": 2.0, "tokens_per_s": 90.0, "eta_s": 80},
    {"event": "eval", "step": 2, "eval_loss": 2.1},
    {"event": "log", "step": 4, "max_steps": 10, "loss": 1.5, "tokens_per_s": 95.0, "eta_s": 60},
    {"event": "stopped", "step": 4},
    {"event": "start", "max_steps": 10, "resumed_from": 3},
    {"event": "log", "step": 4, "max_steps": 10, "loss": 1.4, "tokens_per_s": 99.0, "eta_s": 61},
]


def test_a_runs_numbers_fold_from_its_records() -> None:
    now = run_now(POINTS)
    assert (now.step, now.max_steps, now.loss, now.eval_loss) == (4, 10, 1.4, 2.1)
    assert now.fraction == 0.4 and now.ended is None  # resumed: going again
    assert run_now([*POINTS, {"event": "done", "step": 10}]).ended == "done"
    assert [eta_text(s) for s in (None, 5, 125, 7300)] == ["-", "5s", "2m05s", "2h01m"]
    # a resumed run trains steps again: the chart shows the latest pass, one point per step
    (loss_x, loss_y), (eval_x, eval_y) = chart_series(RunPresenter.chart, POINTS)
    assert loss_x == (2.0, 4.0) and loss_y == (2.0, 1.4) and eval_x == (2.0,)


def test_the_screening_report_in_words() -> None:
    text = screening_text({"rows_in": 9, "rows_out": 7, "train_rows": 6, "eval_rows": 1,
                           "rules": {"secret": {"rows": 2, "action": "drop",
                                                "examples": ["key [REDACTED]", "x"]},
                                     "email": {"rows": 0, "action": "redact", "examples": []}}})
    assert text is not None
    plain = text.plain
    assert "9 rows in → 7 kept" in plain and "secret" in plain and "e.g. key [REDACTED]" in plain
    assert "email" in plain and screening_text(None) is None


def test_toggles_are_keys_and_read_only_has_none(tickers_view: type[ResourceVerbs]) -> None:
    ids = [b.id for b in tickers_view.declared_bindings()]
    assert ids == ["tickers.new", "tickers.edit", "tickers.remove", "tickers.stop",
                   "tickers.resume", "tickers.logs", "tickers.rollback"]
    assert [b.key for b in tickers_view.declared_bindings() if b.action in ("stop", "resume")] \
        == ["s", "u"]
    assert [b.action for b in tickers_view.declared_bindings(read_only=True)] == ["logs"]


# --- the view, with a process that works in steps ----------------------------------------------


async def tickers_of(pilot: Any) -> ResourceVerbs:
    app = pilot.app
    assert app.main is not None
    app.show_view("tickers")
    await pilot.pause()
    view = app.main.view("tickers")
    assert isinstance(view, ResourceVerbs)
    return view


async def test_chart_moves_and_stop_resume_are_actions(
        tmp_path: Path, tickers_view: type[ResourceVerbs]) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    engine = Engine(lab)
    spec = TickerSpec(name="t1", host="local", out=str(tmp_path / "t1.jsonl"), steps=400,
                      every=0.2)
    try:
        assert engine.act([Change("ticker", "t1", spec)], "ticker t1 started").ok
    finally:
        engine.close()
        lab.close()
    app = LlmopsApp(path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await opened(pilot)
            view = await tickers_of(pilot)
            await wait_for(pilot, lambda: "t1" in view.rows and view.rows["t1"].state
                           == "training", 30, "t1 training")
            chart = view.query_one(LossChart)
            await wait_for(pilot, lambda: chart.point_count >= 2, 30, "points on the chart")
            seen = chart.point_count
            await wait_for(pilot, lambda: chart.point_count > seen + 2, 30, "the chart moving")
            assert chart.drawn[0][1][0] > chart.drawn[0][1][-1]  # the loss goes down
            assert "loss" in chart.plt.build() and "step" in chart.plt.build()  # legend, axis
            bar = view.query_one("#detail-bar", ProgressBar)
            await wait_for(pilot, lambda: bar.total == 400 and 0 < (bar.progress or 0) < 400, 30,
                           "the progress bar")
            assert "ETA" in shown_text(view.query_one("#detail-bar-words", Label))
            await wait_for(pilot, lambda: view.query_one("#detail-report").display, 20,
                           "the report")
            report = shown_text(view.query_one("#detail-report", Static))
            assert "12 rows in → 11 kept" in report and "api_key=[REDACTED]" in report
            await wait_for(pilot, lambda: "step" in shown_text(
                view.query_one("#detail-tail", Static)), 20, "the log tail")
            assert {"stop", "resume", "logs", "rollback"} <= footer_keys(app)
            assert view.check_action("resume", ()) is None  # it runs: dimmed

            await pilot.press("s")
            confirm = await on_screen(pilot, ConfirmScreen)
            assert "checkpoint" in shown_text(confirm.query_one("#confirm-body"))
            await pilot.press("y")
            await on_screen(pilot, MainScreen)
            await wait_for(pilot, lambda: view.rows["t1"].state == "stopped"
                           and not view.rows["t1"].busy, 30, "t1 stopped")
            assert view.rows["t1"].spec.model_dump()["state"] == "stopped"
            assert view.check_action("stop", ()) is None and view.check_action("resume", ())
            assert view.last_action["t1"][1] == "ticker t1 stopped"
            stopped_at = chart.point_count

            await pilot.press("u")
            await wait_for(pilot, lambda: view.rows["t1"].state == "training", 30, "resumed")
            await wait_for(pilot, lambda: chart.point_count > stopped_at + 1, 30,
                           "the chart moving again")
            assert view.last_action["t1"][1] == "ticker t1 resumed"
            close_app_lab(app)
    finally:
        procs.stop(LocalTransport(local_host(tmp_path)), ticker_proc(spec), grace=1)


async def test_read_only_offers_no_stop_resume_or_new(
        tmp_path: Path, tickers_view: type[ResourceVerbs]) -> None:
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    spec = TickerSpec(name="t2", host="local", out=str(tmp_path / "t2.jsonl"), steps=3,
                      state="stopped")
    lab.commit("hand edit: ticker t2", [lab.write_spec("ticker", "t2", spec)])
    lab.close()
    app = LlmopsApp(path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = await tickers_of(pilot)
        await wait_for(pilot, lambda: "t2" in view.rows and view.rows["t2"].state == "stopped",
                       30, "t2 observed")
        keys = footer_keys(app)
        assert "logs" in keys and not {"new", "edit", "remove", "stop", "resume"} & keys
        assert view.check_action("resume", ()) is False
        await pilot.press("u")
        await pilot.pause()
        assert view.rows["t2"].spec.model_dump()["state"] == "stopped"
        close_app_lab(app)


# --- the real run kind: a real trainer on the tiny model ---------------------------------------


def test_the_runs_view_offers_its_keys_by_capability() -> None:
    view = next(v for v in registry.VIEWS if v.view_id == "runs")
    ids = [b.id for b in view.declared_bindings()]
    assert ids == ["runs.new", "runs.edit", "runs.remove", "runs.stop", "runs.resume",
                   "runs.restart", "runs.logs", "runs.rollback"]
    assert [b.action for b in view.declared_bindings(read_only=True)] == ["logs"]


async def test_a_real_run_started_from_the_form_trains_with_a_moving_chart(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(data / "train.jsonl", [*text_rows(40), {"text": "mail bob@example.com now"}])
    host = local_host(tmp_path, data_dirs=[str(data)])
    app = LlmopsApp(lab_with(tmp_path / "lab", host))
    done: list[ActionDone] = []

    def verdict(summary: str) -> str | None:
        """The error of the action the console ran (None: it succeeded), once it ended."""
        found = next((m for m in done if m.summary == summary), None)
        if found is None:
            return "not ended"
        return found.error or (None if found.record and found.record.ok else str(found.record))

    def hook(message: Any) -> None:
        if isinstance(message, ActionDone):
            done.append(message)

    try:
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            await opened(pilot)
            await pilot.press("3")
            assert app.main is not None
            view = app.main.view("runs")
            assert isinstance(view, ResourceVerbs)
            await wait_for(pilot, lambda: view.loaded, what="the runs")
            await pilot.press("n")
            form = await on_screen(pilot, SpecFormScreen)
            assert form.query_one("#field-host", Input).value == "local"
            assert not form.query_one("#row-logging_steps").display  # advanced: folded
            form.query_one("#advanced", Switch).value = True
            await wait_for(pilot, lambda: form.query_one("#row-logging_steps").display)
            for field, value in (("name", "r1"), ("base", str(tiny_model_dir())),
                                 ("dataset", str(data / "train.jsonl")), ("max_steps", "2000"),
                                 ("eval_split", "0.2"), ("batch_size", "2"),
                                 ("target_modules", "q_proj, v_proj"), ("logging_steps", "1"),
                                 ("eval_steps", "4"), ("save_steps", "20"),
                                 ("max_seq_len", "32")):
                form.query_one(f"#field-{field}", Input).value = value
            form.query_one("#field-screening-email", Select).value = "drop"
            await wait_for(pilot, lambda: form.spec is not None, what=f"a spec {form.problems}")
            spec = form.spec
            assert isinstance(spec, RunSpec) and spec.screening["email"] == "drop"
            assert spec.target_modules == ["q_proj", "v_proj"] and spec.state == "running"
            await pilot.press("ctrl+s")
            await on_screen(pilot, MainScreen)
            await wait_for(pilot, lambda: "r1" in view.rows, 120, "r1 listed")
            # listed while its start still runs (the file is committed first): busy, no keys
            assert view.rows["r1"].busy == "starting" or verdict("run r1 started") != "not ended"

            await wait_for(pilot, lambda: verdict("run r1 started") != "not ended", 300,
                           "the start")
            assert verdict("run r1 started") is None, verdict("run r1 started")
            await wait_for(pilot, lambda: "r1" in view.rows and not view.rows["r1"].busy
                           and view.rows["r1"].state == "training", 60, "r1 training")
            chart = view.query_one(LossChart)
            await wait_for(pilot, lambda: chart.point_count >= 2, 120, "points on the chart")
            seen = chart.point_count
            await wait_for(pilot, lambda: chart.point_count > seen + 2, 120, "the chart moving")
            assert chart.drawn[0][0][-1] > chart.drawn[0][0][0]  # later steps, drawn in order
            await wait_for(pilot, lambda: chart.drawn[1][0], 120, "an eval loss point")
            bar = view.query_one("#detail-bar", ProgressBar)  # set by the same poll, or the next
            await wait_for(pilot, lambda: bar.total == 2000 and (bar.progress or 0) > 0, 60,
                           "the progress bar")
            await wait_for(pilot, lambda: view.query_one("#detail-report").display, 60,
                           "the screening report")
            report = shown_text(view.query_one("#detail-report", Static))
            assert "41 rows in → 40 kept" in report and "email" in report, report
            cells = view.query_one(ResourceTable).get_row("r1")
            assert cells[3].endswith("/2000") and cells[5] != "-"  # step/max, loss
            await pilot.pause(0.5)
            shot = target(tmp_path, "screenshot-runs.svg")  # the README's picture
            app.save_screenshot(shot.name, path=str(shot.parent))
            assert shot.stat().st_size > 10_000 and "llmops" in shot.read_text()

            await pilot.press("s")
            await on_screen(pilot, ConfirmScreen)
            await pilot.press("y")
            await on_screen(pilot, MainScreen)
            await wait_for(pilot, lambda: verdict("run r1 stopped") != "not ended", 300,
                           "the stop")
            assert verdict("run r1 stopped") is None, verdict("run r1 stopped")
            await wait_for(pilot, lambda: not view.rows["r1"].busy
                           and view.rows["r1"].state == "stopped", 60, "r1 stopped")
            await wait_for(pilot, lambda: view.last_action["r1"][1] == "run r1 stopped", 30,
                           "the stop as r1's last action")
            assert view.check_action("resume", ()) and view.check_action("stop", ()) is None
            close_app_lab(app)
    finally:
        procs.stop(LocalTransport(host), "run.r1", grace=5)
