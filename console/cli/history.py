"""`llmops history`, `rollback`, `plan`, `apply`: the journal and going back in it."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.syntax import Syntax
from rich.table import Table

from llmops.console.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    engine_for_cli,
    err,
    fail,
    json_option,
    out,
    refuse_if_read_only,
    report_action,
    stream_progress,
)
from llmops.rollback.engine import Change
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import spec_path


@click.command("history")
@click.argument("action_id", type=int, required=False)
@click.option("--verify", is_flag=True, help="Check the journal's hash chain.")
@json_option
def history(action_id: int | None, verify: bool, as_json: bool) -> None:
    """Every action: id, when, who, summary, status, seconds, commits (or one in full)."""
    with engine_for_cli(as_json) as engine:
        journal = engine.lab.journal
        if verify:
            problems = journal.verify()
            if as_json:
                emit_json({"ok": not problems, "problems": problems, "rows": len(journal.events())})
            elif problems:
                for p in problems:
                    out.print(f"[red]✗[/] {p}")
            else:
                out.print(f"[green]✓[/] the journal's {len(journal.events())} rows chain intact")
            sys.exit(EXIT_FAILED if problems else EXIT_OK)
        if action_id is not None:
            record = journal.action(action_id)
            if record is None:
                fail(f"there is no action {action_id}", as_json=as_json)
            if as_json:
                emit_json(record)
                return
            out.print(f"[bold]action {record.id}[/] {record.summary} — {record.display_status}")
            out.print(f"by {record.who} at {record.started_at}, {record.seconds or 0:.1f}s")
            diff = engine.lab.diff(record.before_commit, record.commit or record.before_commit)
            if diff:
                out.print(Syntax(diff, "diff", theme="ansi_dark"))
            for step in record.steps:
                out.print(
                    f"  step {step['ref']} {step['verb']}: {'ok' if step['ok'] else 'FAILED'}"
                    f" {step['seconds']}s {step.get('error') or ''}"
                )
            for check in record.checks:
                out.print(
                    f"  check {check['ref']} {check['name']}:"
                    f" {'ok' if check['ok'] else 'FAILED'} {check['detail']}"
                )
            if record.error:
                out.print(f"[red]{record.error}[/]")
            return
        actions = journal.actions()
        if as_json:
            emit_json(actions)
            return
        table = Table("id", "when", "who", "summary", "status", "seconds", "commits")
        for a in actions:
            table.add_row(
                str(a.id),
                a.started_at[:19].replace("T", " "),
                a.who,
                a.summary,
                a.display_status,
                f"{a.seconds:.1f}" if a.seconds is not None else "",
                f"{a.before_commit[:7]}→{(a.commit or '')[:7]}",
            )
        out.print(table)


@click.command("rollback")
@click.argument("action_id", type=int, required=False)
@click.option(
    "--last-good",
    "last_good",
    metavar="KIND/NAME",
    help="Put one resource back as it was after its last fully validated action.",
)
@json_option
def rollback(action_id: int | None, last_good: str | None, as_json: bool) -> None:
    """Undo action N (itself a new action), then run every validation check."""
    refuse_if_read_only("rollback")
    if (action_id is None) == (last_good is None):
        fail("give an ACTION_ID or --last-good KIND/NAME (one of them)", as_json=as_json)
    with engine_for_cli(as_json) as engine:
        stream_progress(engine, as_json)
        if last_good is not None:
            kind, _, name = last_good.partition("/")
            if kind not in KINDS or not name:
                fail(
                    f"--last-good: {last_good!r} is not KIND/NAME (kinds: {', '.join(KINDS)})",
                    as_json=as_json,
                )
            record = engine.rollback_last_good(kind, name)
        else:
            assert action_id is not None
            preview = engine.preview_rollback(action_id)
            if not as_json:
                err.print(
                    f"rolling back action {action_id} ({preview.action.summary}): "
                    + ", ".join(
                        f"{c.kind}/{c.name} → " + ("removed" if c.spec is None else "as before")
                        for c in preview.changes
                    )
                    + f"; expected ~{preview.expected_seconds:.0f}s"
                )
                if preview.later_actions:
                    err.print(
                        "[yellow]later actions touched these resources too and are undone"
                        f" with it: {', '.join(map(str, preview.later_actions))}[/]"
                    )
            record = engine.rollback(action_id)
        report_action(record, as_json)


@click.command("plan")
@json_option
def plan(as_json: bool) -> None:
    """Desired (the lab's files, hand edits included) against what the hosts run."""
    with engine_for_cli(as_json) as engine:
        edits = engine.lab.hand_edits()
        specs = engine.lab.specs()  # raises LabFileError naming the file and line
        rows: list[dict[str, Any]] = []
        for ref in sorted(set(specs) | set(edits)):
            kind = KINDS[ref[0]]
            desired = specs.get(ref)
            current = engine.lab.read_spec(ref[0], ref[1], engine.lab.head())
            where = desired or current
            observed = kind.observe(where, engine.hosts) if where else {}
            steps = (
                kind.plan(desired, current, observed) if ref in edits or ref[0] != "host" else []
            )
            rows.append(
                {
                    "resource": f"{ref[0]}/{ref[1]}",
                    "hand_edited": ref in edits,
                    "steps": [f"{s.verb}: {s.detail}" for s in steps],
                }
            )
        if as_json:
            emit_json(rows)
            return
        if not rows:
            out.print("the lab is empty: add a host with `llmops host add`")
        for row in rows:
            mark = "[yellow]edited[/]" if row["hand_edited"] else "[dim]as committed[/]"
            out.print(f"{row['resource']} {mark}")
            for step in row["steps"]:
                out.print(f"   → {step}")
        if edits:
            out.print("run `llmops apply` to make the edits an action")


@click.command("apply")
@json_option
def apply(as_json: bool) -> None:
    """Make the hand edits of the lab's TOML files one action."""
    refuse_if_read_only("apply")
    with engine_for_cli(as_json) as engine:
        edits = engine.lab.hand_edits()
        if not edits:
            fail("nothing to apply: no file differs from the last commit", as_json=as_json)
        changes = [Change(k, n, engine.lab.read_spec(k, n)) for k, n in edits]
        # the engine writes the files itself; put them back so a refusal leaves no trace
        stream_progress(engine, as_json)
        record = engine.act(
            changes, "apply hand edits: " + ", ".join(spec_path(k, n) for k, n in edits)
        )
        report_action(record, as_json)
