"""The audit trail: `llmops audit [--since WHEN] [--json]` (issue 13, item 10).

Every action and operation (restart) is in the journal with who (the OS user and the host of
the console or CLI that acted), what, when, its result and its duration; this exports it.
The rows come from the hash-chained journal, so `llmops history --verify` vouches for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import emit_json, engine_for_cli, json_option, out
from llmops.console.cli.history import since_bound, warn_gap

if TYPE_CHECKING:
    from llmops.rollback.records import ActionRecord

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""


def audit_row(record: ActionRecord) -> dict[str, Any]:
    """One action as an auditor reads it (who split into user and host)."""
    user, _, host = record.who.partition("@")
    return {
        "id": record.id,
        "user": user,
        "host": host,
        "what": record.summary,
        "type": record.kind,
        "resources": [f"{k}/{n}" for k, n in record.refs],
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "result": record.display_status,
        "seconds": record.seconds,
        "error": record.error,
        "rollback_of": record.rollback_of,
        "before_commit": record.before_commit,
        "commit": record.commit,
        "after_commit": record.after_commit,
    }


@click.command("audit")
@click.option("--since", metavar="WHEN",
              help="Actions from WHEN on: an action number or an ISO date/time (UTC).")
@json_option
def audit(since: str | None, as_json: bool) -> None:
    """Who did what, when, with what result and how long it took: every action in the
    journal, oldest first (`llmops history --verify` checks the journal's chain)."""
    with engine_for_cli(as_json) as engine:
        warn_gap(engine.lab)
        bounds = since_bound(since, as_json) if since else {}
        rows = [audit_row(a) for a in engine.lab.journal.actions(**bounds)]
        if as_json:
            emit_json(rows)
            return
        table = Table("id", "started (UTC)", "user", "host", "what", "result", "seconds")
        for row in rows:
            table.add_row(
                str(row["id"]),
                row["started_at"][:19].replace("T", " "),
                Text(row["user"]),
                Text(row["host"]),
                Text(row["what"]),
                Text(row["result"]),
                f"{row['seconds']:.1f}" if row["seconds"] is not None else "",
            )
        out.print(table)


COMMANDS.append(audit)
