"""`llmops run ...`: LoRA / QLoRA fine-tuning runs started, stopped, resumed, listed, their
logs, their dataset screening report and their progress. Stop and resume are spec changes
(`state`), so each is an action that `llmops rollback` undoes."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    print_rows,
    put_spec,
    refuse_if_read_only,
    remove_resource,
    report_action,
    stream_progress,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.run.spec import RunSpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine

NEEDED = ("host", "base", "dataset")
"""What a new run must be given."""


def options_given(model: type[Spec], given: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """The options as spec values; a list or KEY=VALUE option that does not read exits 2
    naming it (in JSON too), before the lab is touched."""
    try:
        return given_fields(model, given)
    except click.BadParameter as exc:
        fail(f"{exc.param_hint}: {exc.message}", as_json=as_json)


def run_spec(spec: Spec) -> RunSpec:
    assert isinstance(spec, RunSpec)
    return spec


def observed_state(engine: Engine, spec: Spec) -> str:
    """The state in a word, or why it cannot be had (the rest of the answer still prints)."""
    from llmops.rollback.operate import TransportError

    try:
        return engine.status(spec)
    except TransportError as exc:
        return f"unreachable: {exc}"[:80]


def with_progress(engine: Engine, row: dict[str, Any]) -> dict[str, Any]:
    """A list row whose numbers the telemetry store lacks (no console polled it lately) gets
    them from the run's progress records on its host."""
    from llmops.console.presenters.run_words import run_now
    from llmops.rollback.operate import TransportError

    if row.get("step") is not None or str(row.get("state", "")).startswith("unreachable"):
        return row
    spec = engine.lab.read_spec("run", row["name"])
    if spec is None:
        return row
    try:
        now = run_now(engine.progress(spec))
    except TransportError:
        return row
    found = {"step": now.step, "max_steps": now.max_steps, "loss": now.loss,
             "eval_loss": now.eval_loss, "tokens_per_s": now.tokens_per_s, "eta_s": now.eta_s}
    return {**row, **{k: v for k, v in found.items() if v is not None and row.get(k) is None}}


@click.group("run")
def run_group() -> None:
    """LoRA / QLoRA fine-tuning runs on your hosts: screened data, a trainer, a loss curve."""


@run_group.command("start")
@click.argument("name", shell_complete=names_of("run"))
@spec_options(RunSpec, skip={"state"}, refs={"host": "host"})
@json_option
def run_start(name: str, as_json: bool, **given: Any) -> None:
    """Start a run, or change one (options not given keep their value; a stopped run starts
    again): the dataset is screened on the host, then the trainer runs there."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("run start")
    values = options_given(RunSpec, given, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("run", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        if isinstance(current, RunSpec) and "screening" in values:
            values["screening"] = {**current.screening, **values["screening"]}
        fields.update(values, state="running")
        missing = [f"--{n}" for n in NEEDED if n not in fields]
        if missing:
            fail(f"a new run needs {', '.join(missing)}", as_json=as_json)
        put_spec(engine, "run", RunSpec.model_validate(fields), "started", as_json)


def set_state(name: str, state: str, verb: str, as_json: bool) -> None:
    """One action changing only the run's `state`."""
    from llmops.rollback.engine import Change

    refuse_if_read_only(f"run {'stop' if state == 'stopped' else 'resume'}")
    with engine_for_cli(as_json) as engine:
        spec = run_spec(existing_spec(engine, "run", name, as_json))
        if spec.state == state:
            fail(f"state: run {name} is {state} already (nothing to change)", as_json=as_json)
        changed = RunSpec.model_validate({**spec.model_dump(), "state": state})
        stream_progress(engine, as_json)
        report_action(engine.act([Change("run", name, changed)], f"run {name} {verb}"), as_json)


@run_group.command("stop")
@click.argument("name", shell_complete=names_of("run"))
@json_option
def run_stop(name: str, as_json: bool) -> None:
    """Stop a run gracefully: the trainer saves a checkpoint and exits (an action)."""
    set_state(name, "stopped", "stopped", as_json)


@run_group.command("resume")
@click.argument("name", shell_complete=names_of("run"))
@json_option
def run_resume(name: str, as_json: bool) -> None:
    """Resume a stopped run from its newest checkpoint (an action)."""
    set_state(name, "running", "resumed", as_json)


@run_group.command("remove")
@click.argument("name", shell_complete=names_of("run"))
@json_option
def run_remove(name: str, as_json: bool) -> None:
    """Stop a run and remove it from the lab; its checkpoints and adapter stay on the host
    (roll back to bring it back)."""
    remove_resource("run remove", "run", name, f"run {name} removed", as_json)


@run_group.command("list")
@json_option
def run_list(as_json: bool) -> None:
    """Runs with their state, step, loss, eval loss, tokens/s and ETA."""
    from llmops.console.presenters.run_words import eta_text
    from llmops.console.widgets.render import num
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = [with_progress(engine, row) for row in summaries(engine, "run")]
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "state", "step/max", "loss", "eval loss", "tok/s", "ETA",
                      "base")
        for r in rows:
            cells = (r["name"], r["host"], r["state"],
                     f"{r.get('step') if r.get('step') is not None else '-'}/"
                     f"{r.get('max_steps') or '?'}",
                     num(r.get("loss"), "{:.4f}"), num(r.get("eval_loss"), "{:.4f}"),
                     num(r.get("tokens_per_s"), "{:.0f}"),
                     eta_text(r.get("eta_s") if r["state"] == "training" else None), r["base"])
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "runs", "`llmops run start NAME --host H --base M --dataset PATH`")


run_group.add_command(
    logs_command("run", "The last lines of the run's log on its host (screening, then trainer).")
)


@run_group.command("report")
@click.argument("name", shell_complete=names_of("run"))
@json_option
def run_report(name: str, as_json: bool) -> None:
    """The dataset screening report of the run's current config: rows in and out, and per
    rule the rows found, what was done with them and up to three redacted examples."""
    from llmops.console.presenters.run_words import screening_text

    with engine_for_cli(as_json) as engine:
        report = engine.report(existing_spec(engine, "run", name, as_json))
        if as_json:
            emit_json(report)
            return
        if report is None:
            out.print(f"run {esc(name)} has no screening report yet (it is made when the run "
                      "starts)")
            return
        shown = screening_text(report)
        if shown is not None:
            out.print(shown)
        for rule, found in (report.get("rules") or {}).items():
            for example in (found.get("examples") or [])[1:]:
                out.print(Text(f"  {rule:<10} e.g. {' '.join(str(example).split())[:100]}",
                               style="grey62"))


@run_group.command("show")
@click.argument("name", shell_complete=names_of("run"))
@json_option
def run_show(name: str, as_json: bool) -> None:
    """A run's spec, its state now and its progress (step, loss, eval loss, ETA)."""
    from llmops.console.presenters.run_words import eta_text, run_now, state_reading
    from llmops.console.widgets.render import num
    from llmops.rollback.operate import TransportError

    with engine_for_cli(as_json) as engine:
        spec = run_spec(existing_spec(engine, "run", name, as_json))
        state = observed_state(engine, spec)
        try:
            points = engine.progress(spec)
        except TransportError:
            points = []
        now = run_now(points)
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), "state": state,
                       "progress": {**asdict(now), "fraction": now.fraction},
                       "points": points})
            return
        for key, value in spec.model_dump(exclude={"state"}).items():
            out.print(Text(f"{key:>24}: {value}"))
        for label, words in state_reading(name, spec.state, state):
            out.print(Text(f"{label:>24}{':' if label else ' '} {words}",
                           style="bold" if label else "dim"))
        step = f"{now.step if now.step is not None else '-'}/{now.max_steps or '?'}"
        eta = "done" if now.ended == "done" else eta_text(now.eta_s if state == "training"
                                                          else None)
        out.print(Text(f"{'step':>24}: {step}  loss {num(now.loss, '{:.4f}')}  eval loss "
                       f"{num(now.eval_loss, '{:.4f}')}  tok/s {num(now.tokens_per_s, '{:.0f}')}"
                       f"  ETA {eta}"))
