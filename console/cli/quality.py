"""Server eval (quality beside speed) commands: `llmops server eval` and `llmops server evals`
(issue 12). The eval runs and is stored through the Engine (rollback/evals.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from llmops.console.cli.common import (
    EXIT_FAILED,
    emit_json,
    engine_for_cli,
    err,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    settings,
)
from llmops.console.cli.completion import names_of

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


@click.command("eval")
@click.argument("name", shell_complete=names_of("server"))
@click.option("--dataset", "dataset", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL: prompts with expected answers (exact, contains, regex), choices "
                   "scored by logprob, or reference texts for perplexity.")
@json_option
def server_eval(name: str, dataset: Path, as_json: bool) -> None:
    """Score a server on a dataset; stored by its spec commit and compared with the eval of
    the commit before (accuracy, perplexity, and cost and speed where benches exist)."""
    from llmops.rollback.evals import EvalError

    try:
        text = dataset.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"dataset: cannot read {dataset}: {exc}", as_json=as_json)
    with engine_for_cli(as_json) as engine:
        existing_spec(engine, "server", name, as_json)
        try:
            result = engine.run_eval(
                name, text, source=dataset.name, store=not settings().read_only,
                progress=None if as_json
                else lambda n, total: err.print(f"[dim]{n}/{total}[/]", end="\r"),
            )
        except EvalError as exc:
            fail(f"eval of {name} failed: {exc}", EXIT_FAILED, as_json)
        if not as_json:
            err.print(" " * 12, end="\r")  # the progress counter goes
    if as_json:
        emit_json({"ok": True, **result})
        return
    show_eval(result)


def show_eval(result: dict[str, Any]) -> None:
    out.print(f"[bold]eval of {esc(result['server'])}[/] at {result['commit'][:7]} on "
              f"{esc(result['dataset'])}: {result['items']} items in {result['seconds']}s")
    out.print(f"  accuracy {_pct(result['accuracy'])} ({result['correct']}/{result['judged']})"
              f"  perplexity {_num(result['perplexity'])}  errors {result['errors']}")
    for scorer, row in sorted(result.get("by_scorer", {}).items()):
        score = f"{row['correct']}/{row['n']}" if "correct" in row else f"{row['n']} texts"
        out.print(f"  {esc(scorer):>10}: {score}")
    for item in result.get("results", []):
        if item.get("error"):
            out.print(f"  [red]item {item['index']}:[/] {esc(item['error'])}")
    out.print(f"[bold]{esc(result['line'])}[/]")


@click.command("evals")
@click.argument("name", shell_complete=names_of("server"))
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def server_evals(name: str, limit: int, as_json: bool) -> None:
    """A server's evals, newest first: commit, dataset, accuracy, perplexity."""
    with engine_for_cli(as_json) as engine:
        existing_spec(engine, "server", name, as_json)
        rows = engine.evals(name, limit)
        last = engine.last_eval(name)
    if as_json:
        emit_json({"server": name, "evals": rows, "last": last})
        return
    table = Table("id", "commit", "when", "dataset", "accuracy", "perplexity", "items")
    for row in rows:
        table.add_row(str(row["id"]), row["commit"][:7], row["at"], esc(row["dataset"]),
                      _pct(row["accuracy"]), _num(row["perplexity"]), str(row["items"]))
    out.print(table)
    if last is not None:
        out.print(f"[bold]{esc(last['line'])}[/]")


SERVER_COMMANDS += [server_eval, server_evals]
