"""`llmops history`, `rollback`, `plan`, `apply`: the journal and going back in it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    engine_for_cli,
    err,
    esc,
    fail,
    json_option,
    out,
    print_rows,
    refuse_if_read_only,
    report_action,
    settings,
    stream_progress,
)
from llmops.console.cli.completion import complete_refs

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine
    from llmops.rollback.lab import Lab

DEFAULT_LIMIT = 50
SHOWN_PROBLEMS = 20


def since_bound(since: str, as_json: bool) -> dict[str, Any]:
    """`--since`: an action number, or an ISO date/time (UTC unless it names a zone)."""
    if since.isdigit():
        return {"from_id": int(since)}
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        fail(f"--since: {since!r} is neither an action number nor a date (2024-05-01 or"
             " 2024-05-01T14:30)", as_json=as_json)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return {"since": when.isoformat(timespec="milliseconds")}


def warn_gap(lab: Lab) -> None:
    """lab.db deleted, cut short or rebuilt must never look like a complete history."""
    for notice in lab.notices:
        err.print(f"[yellow]warning: {esc(notice)}[/]")
    missing = lab.journal_gap()
    rebuilt = lab.journal.rebuilt_through()
    if missing and not lab.rebuilt and missing == rebuilt:
        err.print(
            f"[yellow]warning: actions up to {rebuilt} were rebuilt from git after lab.db was"
            " lost: who acted, steps, checks and timings of those are gone[/]"
        )
    elif missing and missing != rebuilt:
        have = lab.journal.max_action_id()
        err.print(
            f"[yellow]warning: git holds actions up to {missing}, but the journal (lab.db)"
            + (f" stops at action {have}" if have else " is empty")
            + ": it was deleted, replaced or cut short, so this history is incomplete;"
            " run `llmops history --verify`[/]"
        )


def verify_journal(lab: Lab, as_json: bool) -> NoReturn:
    """The chain and its anchors in git; exit 1 on any problem."""
    problems = lab.verify()
    rows = lab.journal.row_count()
    if as_json:
        emit_json({"ok": not problems, "problems": problems, "rows": rows})
    elif problems:
        for p in problems[:SHOWN_PROBLEMS]:
            out.print(f"[red]✗[/] {esc(p)}")
        if len(problems) > SHOWN_PROBLEMS:
            out.print(f"[red]… and {len(problems) - SHOWN_PROBLEMS} more[/]")
    else:
        out.print(f"[green]✓[/] the journal's {rows} rows chain intact and match git's anchors")
    sys.exit(EXIT_FAILED if problems else EXIT_OK)


def show_action(engine: Engine, action_id: int, as_json: bool) -> None:
    record = engine.lab.journal.action(action_id)
    if record is None:
        fail(f"there is no action {action_id}", as_json=as_json)
    if as_json:
        emit_json(record)
        return
    out.print(f"[bold]action {record.id}[/] {esc(record.summary)} — {record.display_status}")
    out.print(f"by {esc(record.who)} at {record.started_at}, {record.seconds or 0:.1f}s")
    diff = engine.lab.diff(record.before_commit, record.commit or record.before_commit)
    if diff:
        out.print(Syntax(diff, "diff", theme="ansi_dark"))
    for step in record.steps:
        out.print(
            f"  step {esc(step.ref)} {step.verb}: {'ok' if step.ok else 'FAILED'}"
            f" {step.seconds}s {esc(step.error or '')}"
        )
    for check in record.checks:
        out.print(
            f"  check {esc(check.ref)} {esc(check.name)}:"
            f" {'ok' if check.ok else 'FAILED'} {esc(check.detail)}"
        )
    if record.error:
        out.print(f"[red]{esc(record.error)}[/]")


@click.command("history")
@click.argument("action_id", type=int, required=False)
@click.option("--verify", is_flag=True, help="Check the journal's hash chain against git.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help=f"Show the newest N actions (default {DEFAULT_LIMIT}).")
@click.option("--all", "show_all", is_flag=True, help="Show every action.")
@click.option("--since", metavar="WHEN",
              help="Actions from WHEN on: an action number or an ISO date/time (UTC).")
@json_option
def history(
    action_id: int | None, verify: bool, limit: int | None, show_all: bool, since: str | None,
    as_json: bool,
) -> None:
    """The newest actions: id, when, who, summary, status, seconds, commits (or one in full).

    Only the actions shown are read: `--limit`, `--since` and `--all` page a long journal."""
    with engine_for_cli(as_json) as engine:
        journal = engine.lab.journal
        warn_gap(engine.lab)
        if verify:
            verify_journal(engine.lab, as_json)
        if action_id is not None:
            show_action(engine, action_id, as_json)
            return
        bounds = since_bound(since, as_json) if since else {}
        if not show_all and (limit is not None or not since):
            bounds["limit"] = limit or DEFAULT_LIMIT
        actions = journal.actions(**bounds)
        if as_json:
            emit_json(actions)
            return
        table = Table("id", "when", "who", "summary", "status", "seconds", "commits")
        for a in actions:
            table.add_row(
                str(a.id),
                a.started_at[:19].replace("T", " "),
                Text(a.who),
                Text(a.summary),
                a.display_status,
                f"{a.seconds:.1f}" if a.seconds is not None else "",
                f"{a.before_commit[:7]}→{(a.commit or '')[:7]}",
            )
        print_rows(table, "actions", "every change is one, e.g. `llmops host add local --local`")
        total = journal.action_count()
        if len(actions) < total:
            out.print(f"[dim]{len(actions)} of {total} actions shown; --all, --limit N or"
                      " --since WHEN for more[/]")


def kind_and_name(option: str, text: str, as_json: bool) -> tuple[str, str]:
    """KIND/NAME as an option gives it, or exit 2 naming the kinds."""
    from llmops.rollback.kinds import KINDS

    kind, _, name = text.partition("/")
    if kind not in KINDS or not name:
        fail(f"{option}: {text!r} is not KIND/NAME (kinds: {', '.join(KINDS)})", as_json=as_json)
    return kind, name


def undoable_refs(engine: Engine, limit: int = 5) -> list[tuple[str, int, str]]:
    """The resources whose last action one `rollback --last` would undo now, newest first:
    (KIND/NAME, that action's id, its summary)."""
    from llmops.rollback.operate import newest_undoable

    actions = engine.lab.journal.actions(limit=50)
    found: list[tuple[str, int, str]] = []
    for record in sorted(actions, key=lambda a: -a.id):
        for ref in record.refs:
            undo = newest_undoable(actions, ref)
            label = "/".join(ref)
            if undo is not None and undo.id == record.id and label not in {f[0] for f in found}:
                found.append((label, undo.id, undo.summary))
    return found[:limit]


def refuse_missing_ref(engine: Engine, option: str, as_json: bool) -> NoReturn:
    """`--last` / `--last-good` given without KIND/NAME: say what goes there and what could."""
    found = undoable_refs(engine)
    example = found[0][0] if found else "server/NAME"
    message = (f"{option} needs KIND/NAME, the resource to put back: `llmops rollback {option}"
               f" {example}`")
    if found:
        message += "; resources with an action to undo: " + ", ".join(
            f"{ref} (action {n}: {summary})" for ref, n, summary in found)
        message += f"; or undo one action by its number: `llmops rollback {found[0][1]}`"
    else:
        message += "; nothing in the journal can be rolled back yet (see `llmops history`)"
    fail(message, as_json=as_json)


@click.command("rollback")
@click.argument("action_id", type=int, required=False)
@click.option(
    "--last-good",
    "last_good",
    metavar="KIND/NAME",
    is_flag=False,
    flag_value="",
    shell_complete=complete_refs,
    help="Put one resource back as it was after its last fully validated action.",
)
@click.option(
    "--last",
    metavar="KIND/NAME",
    is_flag=False,
    flag_value="",
    shell_complete=complete_refs,
    help="Undo the last action on one resource not rolled back yet (a row's ctrl+z).",
)
@json_option
def rollback(
    action_id: int | None, last_good: str | None, last: str | None, as_json: bool
) -> None:
    """Undo action N (itself a new action), then run every validation check."""
    refuse_if_read_only("rollback")
    if [action_id, last_good, last].count(None) != 2:
        fail("give an ACTION_ID, --last KIND/NAME or --last-good KIND/NAME (one of them)",
             as_json=as_json)
    with engine_for_cli(as_json) as engine:
        for option, given in (("--last", last), ("--last-good", last_good)):
            if given == "":  # the option without its value: click would only say "requires"
                refuse_missing_ref(engine, option, as_json)
        stream_progress(engine, as_json)
        if last is not None:
            kind, name = kind_and_name("--last", last, as_json)
            found = engine.last_undoable(kind, name)
            if found is None:
                fail(f"no action on {kind}/{name} to roll back (see `llmops history`)",
                     as_json=as_json)
            action_id = found.id
        if last_good is not None:
            record = engine.rollback_last_good(*kind_and_name("--last-good", last_good, as_json))
        else:
            assert action_id is not None
            preview = engine.preview_rollback(action_id)
            if not as_json:
                err.print(
                    f"rolling back action {action_id} ({esc(preview.action.summary)}): "
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
    from llmops.rollback.operate import TransportError

    with engine_for_cli(as_json) as engine:
        finished = [] if settings().read_only else engine.settle()  # reverts left pending
        edits = engine.lab.hand_edits()
        specs = engine.lab.specs()  # raises LabFileError naming the file and line
        rows: list[dict[str, Any]] = []
        for ref in sorted(set(specs) | set(edits)):
            desired = specs.get(ref)
            current = engine.lab.read_spec(ref[0], ref[1], engine.lab.head())
            planned = ref in edits or ref[0] != "host"
            row: dict[str, Any] = {"resource": f"{ref[0]}/{ref[1]}",
                                   "hand_edited": ref in edits, "steps": []}
            try:
                steps = engine.planned(ref[0], desired, current) if planned else []
                row["steps"] = [f"{s.verb}: {s.detail}" for s in steps]
            except TransportError as exc:  # one host down must not hide the others' rows
                row.update(state="unreachable", note=str(exc))
            rows.append(row)
        rows += engine.leftover_rows(finished)
        if as_json:
            emit_json(rows)
            return
        if not rows:
            out.print("the lab is empty: add a host with `llmops host add`")
        for row in rows:
            mark = "[yellow]edited[/]" if row["hand_edited"] else "[dim]as committed[/]"
            if row.get("state"):
                mark = f"[yellow]{esc(row['state'])}[/] — {esc(row['note'])}"
            out.print(f"{esc(row['resource'])} {mark}")
            for step in row["steps"]:
                out.print(f"   → {step}")
        if edits:
            out.print("run `llmops apply` to make the edits an action")


@click.command("apply")
@json_option
def apply(as_json: bool) -> None:
    """Make the hand edits of the lab's TOML files one action."""
    from llmops.rollback.engine import Change
    from llmops.rollback.lab import spec_path

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
