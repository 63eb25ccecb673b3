"""Steps and checks of an action as rich tables (shared by the detail and rollback screens)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("…", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


def step_row(step: dict[str, Any]) -> tuple[Text, str, Text, str]:
    """The detail is spec values and host errors: a Text, never read as markup."""
    detail = step.get("detail", "") + (f" — {step['error']}" if step.get("error") else "")
    return (mark(step.get("ok")), f"step {step.get('ref', '')} {step.get('verb', '')}",
            Text(detail), f"{step.get('seconds', 0):.2f}s")


def check_row(check: dict[str, Any]) -> tuple[Text, str, Text, str]:
    return (mark(check.get("ok")), f"check {check.get('ref', '')} {check.get('name', '')}",
            Text(str(check.get("detail", ""))), f"{check.get('seconds', 0):.2f}s")


def journal_table(steps: list[dict[str, Any]], checks: list[dict[str, Any]]) -> Table:
    table = Table("", "what", "detail", "took", box=None, expand=True)
    for step in steps:
        table.add_row(*step_row(step))
    for check in checks:
        table.add_row(*check_row(check))
    if not steps and not checks:
        table.add_row("", "nothing journalled", "", "")
    return table
