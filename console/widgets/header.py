"""The frame's header: which lab, who holds its lock, how many hosts answer, READ-ONLY."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from llmops.rollback.lock import LockHolder


class LabHeader(Static):
    """One line of lab facts; the app updates its reactives from polled messages."""

    lab_path: reactive[str] = reactive("")
    holder: reactive[LockHolder | None] = reactive(None)
    hosts_up: reactive[int] = reactive(0)
    hosts_total: reactive[int] = reactive(0)
    read_only: reactive[bool] = reactive(False)

    def __init__(self, lab_path: Path, read_only: bool, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.set_reactive(LabHeader.lab_path, str(lab_path))
        self.set_reactive(LabHeader.read_only, read_only)

    def render(self) -> Text:
        text = Text()
        text.append(" llmops ", style="bold reverse")
        text.append(f"  lab {self.lab_path}", style="bold")
        if self.holder is None:
            text.append("  ·  lock free", style="dim")
        else:
            text.append(f"  ·  lock: pid {self.holder.pid} {self.holder.command[:40]} "
                        f"since {self.holder.since}", style="yellow")
        colour = "green" if self.hosts_up == self.hosts_total else "yellow"
        text.append("  ·  hosts up ", style="dim")
        text.append(f"{self.hosts_up}/{self.hosts_total}", style=f"bold {colour}")
        if self.read_only:
            text.append("  ")
            text.append(" READ-ONLY ", style="bold white on red")
        return text
