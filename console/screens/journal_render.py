"""Steps and checks of an action as rich tables (shared by the detail and rollback screens)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from llmops.rollback.records import CheckRow, StepRow


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("…", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


def step_row(step: StepRow) -> tuple[Text, str, Text, str]:
    """The detail is spec values and host errors: a Text, never read as markup."""
    detail = step.detail + (f" — {step.error}" if step.error else "")
    return (mark(step.ok), f"step {step.ref} {step.verb}", Text(detail), f"{step.seconds:.2f}s")


def check_row(check: CheckRow) -> tuple[Text, str, Text, str]:
    return (mark(check.ok), f"check {check.ref} {check.name}", Text(check.detail),
            f"{check.seconds:.2f}s")


def journal_table(steps: list[StepRow], checks: list[CheckRow]) -> Table:
    table = Table("", "what", "detail", "took", box=None, expand=True)
    for step in steps:
        table.add_row(*step_row(step))
    for check in checks:
        table.add_row(*check_row(check))
    if not steps and not checks:
        table.add_row("", "nothing journalled", "", "")
    return table
