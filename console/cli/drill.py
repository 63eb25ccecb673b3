"""Rollback drills and readiness: `llmops drill KIND/NAME` (issue 13 item 8)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from llmops.console.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    engine_for_cli,
    esc,
    fail,
    json_option,
    out,
    refuse_if_read_only,
    stream_progress,
)
from llmops.console.cli.completion import complete_refs

if TYPE_CHECKING:
    from llmops.rollback.drill import Readiness


def print_readiness(ready: Readiness) -> None:
    expected = (f"~{ready.expected_seconds:.1f}s (p50 of {ready.samples} past rollbacks of "
                f"{ready.ref[0]}s)" if ready.expected_seconds is not None
                else "unknown (no rollback of this kind journalled yet)")
    out.print(f"{esc('/'.join(ready.ref))}: rollback "
              + ("[green]ready[/]" if ready.ready else "[red]blocked[/]")
              + f"; expected time {esc(expected)}")
    for blocker in ready.blockers:
        out.print(f"  [red]✗[/] {esc(blocker)}")


@click.command("drill")
@click.argument("ref", metavar="KIND/NAME", shell_complete=complete_refs)
@click.option("--check", "check_only", is_flag=True,
              help="Only say whether it could be rolled back now, and how long that took "
                   "before (nothing written).")
@json_option
def drill(ref: str, check_only: bool, as_json: bool) -> None:
    """Rehearse a rollback: a no-op change, its rollback, the checklist, the time.

    First checks that the resource could go back as it is now (the old model's weights on
    the host, the adapter version in the store, the index's backup) and shows the rollback
    time expected from the journal (p50 of past rollbacks of its kind)."""
    from llmops.rollback.kinds import KINDS

    kind, _, name = ref.partition("/")
    if kind not in KINDS or not name:
        fail(f"KIND/NAME: {ref!r} is not KIND/NAME (kinds: {', '.join(KINDS)})",
             as_json=as_json)
    if not check_only:
        refuse_if_read_only("drill")
    with engine_for_cli(as_json) as engine:
        if engine.lab.read_spec(kind, name) is None:
            fail(f"name: there is no {kind} named {name} (see `llmops {kind} list`)",
                 as_json=as_json)
        if check_only:
            ready = engine.readiness(kind, name)
            if as_json:
                emit_json({"ok": ready.ready, "readiness": asdict(ready)})
            else:
                print_readiness(ready)
            sys.exit(EXIT_OK if ready.ready else EXIT_FAILED)
        stream_progress(engine, as_json)
        report = engine.drill(kind, name)
        if as_json:
            emit_json({"ok": report.ok, **asdict(report)})
            sys.exit(EXIT_OK if report.ok else EXIT_FAILED)
        print_readiness(report.readiness)
        colour = "green" if report.ok else "red"
        out.print(f"drill of {esc(ref)}: {esc(report.how)}: "
                  f"[{colour}]{'passed' if report.ok else 'FAILED'}[/]; rollback "
                  f"{report.rollback_seconds if report.rollback_seconds is not None else '?'}s "
                  f"(actions {report.change_action or '-'} and {report.rollback_action or '-'}, "
                  f"{report.total_seconds:.1f}s in all)")
        for check in report.checks:
            mark = "[green]✓[/]" if check["ok"] else "[red]✗[/]"
            out.print(f"  {mark} {esc(check['ref'])} {esc(check['name'])}: "
                      f"{esc(check['detail'])}")
        if report.error:
            out.print(f"[red]{esc(report.error)}[/]")
        sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


COMMANDS: list[click.Command] = [drill]
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
