"""Pure functions that turn facts and journal records into table cells (tested without a UI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

GREY = "grey50"
STATUS_STYLE = {
    "succeeded": "green", "rolled back": "cyan", "running": "yellow", "interrupted": "bold yellow",
    "failed, reverted": "red", "failed": "bold red", "succeeded, checks failed": "yellow",
    "failed, revert unverified": "bold red",
}


def gib(n: int | None) -> str:
    return f"{n / 2**30:.0f}G" if n else "?"


def bar(fraction: float, width: int = 8) -> str:
    """A block bar: `▇▇▇░░░░░` for 3/8."""
    full = max(0, min(width, round(fraction * width)))
    return "▇" * full + "░" * (width - full)


def gpu_cell(facts: dict[str, Any] | None) -> Text:
    """GPUs with memory and utilisation bars, one line per GPU."""
    if not facts:
        return Text("?", style=GREY)
    gpus = facts.get("gpus") or []
    if not gpus:
        return Text("none (CPU only)", style=GREY)
    out = Text()
    for i, g in enumerate(gpus):
        total, used = g.get("memory_total_bytes") or 0, g.get("memory_used_bytes") or 0
        util = g.get("utilization_percent") or 0
        if i:
            out.append("\n")
        out.append(f"{g.get('index', i)} {str(g.get('name', '?'))[:18]} ")
        out.append(bar(used / total if total else 0, 6), style="magenta")
        out.append(f" {gib(used)}/{gib(total)} ")
        out.append(bar(util / 100, 4), style="cyan")
        out.append(f" {util:.0f}%")
    return out


def cpu_ram_cell(facts: dict[str, Any] | None) -> str:
    if not facts:
        return "?"
    return f"{facts.get('cpu_count', '?')} cpu / {gib(facts.get('ram_total_bytes'))}"


def package_cell(facts: dict[str, Any] | None, name: str) -> str:
    if not facts:
        return "?"
    return (facts.get("packages") or {}).get(name) or "-"


REASON_CELL = 24
"""An unreachable row's reason, cut to this many characters: whole, one host's `connection
refused (is sshd running on that port?)` widened the state column until the other columns left
the screen. The host's detail (enter) probes again and shows the whole reason."""


def state_cell(state: str, reason: str | None = None, retry_in: float | None = None,
               busy: str | None = None) -> Text:
    """A resource's state in a word, coloured: `● up`, `◌ starting`, `○ stopped`, `✗ crashed`,
    `◐ degraded (node cb down)`, or `✗ unreachable · retry in 4s · reason`; what this console
    is doing to it comes first."""
    if busy:
        return Text(f"◌ {busy}", style="yellow")
    if state == "up":
        return Text("● up", style="green")
    if state == "sleeping":
        return Text("◐ sleeping", style="cyan")
    if state.startswith("degraded"):
        return Text(f"◐ {state}", style="bold yellow")
    if state == "stopped":
        return Text("○ stopped", style=GREY)
    if state.startswith("crashed"):
        return Text(f"✗ {state}", style="bold red")
    if not state.startswith("unreachable"):
        return Text(f"◌ {state}", style="yellow")
    text = Text("✗ unreachable", style="bold red")
    if retry_in is not None:
        text.append(f" · retry in {max(0, round(retry_in))}s", style=GREY)
    if reason:
        short = reason if len(reason) <= REASON_CELL else reason[: REASON_CELL - 1] + "…"
        text.append(f" · {short}", style=GREY)
    return text


def num(value: float | None, fmt: str = "{:.1f}", none: str = "-") -> str:
    """A number as a cell shows it; `-` when there is none."""
    return none if value is None else fmt.format(value)


def dimmed(cell: str | Text) -> Text:
    """The same cell, greyed: the row of a host that does not answer."""
    text = cell.copy() if isinstance(cell, Text) else Text(cell)
    text.stylize(GREY)
    return text


def when(iso: str) -> str:
    """A journal timestamp in local time, to the second."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def status_cell(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def commits_cell(before: str, after: str | None) -> str:
    return f"{before[:7]}→{(after or '')[:7] or '?'}"


def seconds_cell(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def short_reason(error: str, limit: int = 60) -> str:
    """The gist of a transport error for a table cell: after the last colon, trimmed."""
    gist = error.rsplit(": ", 1)[-1] if ": " in error else error
    return gist if len(gist) <= limit else gist[: limit - 1] + "…"
