"""The frame's header: which lab, who holds its lock, how many hosts answer, READ-ONLY, and the
two keys a newcomer needs first (help, quit): one line at any width, the least needed cut first."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from llmops.rollback.lock import LockHolder

KEYS_HINT = "? help  q quit "
"""At 80 columns the footer has no room left for `? Help` and `q Quit` (the view's keys come
first): the header always says them."""


def short_path(path: str, room: int) -> str:
    """`path` in at most `room` characters: its end kept (`…/llmops/lab`), '' when none fits."""
    if len(path) <= room:
        return path
    if room < 8:
        return ""
    return "…" + path[-(room - 1):]


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

    def facts(self, compact: bool = False) -> Text:
        """What must stay on screen: READ-ONLY, the lock (compact: without its command), the
        hosts that answer."""
        text = Text()
        if self.read_only:
            text.append(" READ-ONLY ", style="bold white on red")
        if self.holder is None:
            text.append("  lock free", style="dim")
        else:  # the time only: the date is today's, and the full stamp pushed the rest away
            since = self.holder.since[11:19] or self.holder.since
            text.append(f"  lock: pid {self.holder.pid} {since}" if compact else
                        f"  lock: pid {self.holder.pid} {self.holder.command[:24]} since {since}",
                        style="yellow")
        colour = "green" if self.hosts_up == self.hosts_total else "yellow"
        text.append("  hosts up " if compact else "  ·  hosts up ", style="dim")
        text.append(f"{self.hosts_up}/{self.hosts_total}", style=f"bold {colour}")
        return text

    def render(self) -> Text:
        width = self.size.width or 200
        text = Text()
        text.append(" llmops ", style="bold reverse")
        keys = Text(KEYS_HINT, style="dim")
        facts = self.facts()
        if len(text) + len(facts) + len(keys) + 1 > width:
            facts = self.facts(compact=True)
        room = width - len(text) - len(facts) - len(keys) - len("  lab ") - len("  ·") - 1
        path = short_path(self.lab_path, room)
        if path:
            text.append(f"  lab {path}", style="bold")
            text.append("  ·" if not self.read_only else "  ", style="dim")
        text.append_text(facts)
        gap = width - len(text) - len(keys)
        if gap >= 1:
            text.append(" " * gap)
            text.append_text(keys)
        return text
