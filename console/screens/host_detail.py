"""One host in full: every probed fact, its GPUs and the processes llmops runs there."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from llmops.console.messages import HostDetailLoaded
from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.console.widgets import render
from llmops.ops.kinds.host.spec import HostSpec
from llmops.rollback.operate import ProcInfo

SHOWN = ("hostname", "os", "kernel", "arch", "cpu_model", "cpu_count", "python",
         "python_version", "workdir", "gpu_driver", "gpu_note", "command_start_s",
         "command_start_note", "observed_at")


def facts_table(facts: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key in SHOWN:
        if facts.get(key) is not None:
            table.add_row(key, Text(str(facts[key])))  # the host's text, never markup
    table.add_row("ram", f"{render.gib(facts.get('ram_total_bytes'))} total, "
                         f"{render.gib(facts.get('ram_available_bytes'))} available")
    table.add_row("disk free", render.gib(facts.get("disk_free_bytes")))
    pkgs = facts.get("packages") or {}
    table.add_row("packages", Text(", ".join(f"{k} {v or '-'}" for k, v in pkgs.items())))
    table.add_row("gpus", render.gpu_cell(facts))
    return table


def procs_table(procs: list[tuple[ProcInfo, str | None]]) -> Table | str:
    """Each process with what claims it; one llmops started that no spec claims stands out."""
    if not procs:
        return "llmops runs no processes on this host."
    table = Table("name", "state", "pid", "started", "claimed by", "argv", box=None)
    for p, owner in procs:
        claim = Text(owner) if owner else Text(
            "no spec" if p.running else "-", style="bold yellow" if p.running else "")
        table.add_row(Text(p.name), p.state, str(p.pid or "-"), p.started_at or "-", claim,
                      Text(" ".join(p.argv)[:80]))
    return table


class HostDetailScreen(Screen[None]):
    """Shows the cached facts at once, then a fresh probe and the process list from a worker."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="host_detail.close", tooltip="Back to the list"),
        Binding("p", "reload", "Probe", id="host_detail.probe", tooltip="Probe again now"),
    ]

    def __init__(self, context: ViewContext, spec: HostSpec, facts: dict[str, Any] | None) -> None:
        super().__init__()
        self.context, self.spec, self.facts = context, spec, facts

    def compose(self) -> ComposeResult:
        where = "this machine" if self.spec.local else f"{self.spec.address}:{self.spec.port}"
        yield Label(Text(f"host {self.spec.name} — {where}"), classes="screen-title")
        with VerticalScroll():
            yield Static(facts_table(self.facts) if self.facts else "probing…", id="facts")
            yield Label("Processes llmops runs there", classes="section-title")
            yield Static("loading…", id="procs")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="host-detail",
          description="probe a host and list its processes")
    def action_reload(self) -> None:
        engine = self.context.engine
        try:
            facts = engine.probe(self.spec, record=not self.context.read_only)
            procs = engine.host_processes(self.spec.name)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.post_message(HostDetailLoaded(self.spec.name, None, None, error_text(exc)))
            return
        self.post_message(HostDetailLoaded(self.spec.name, facts, procs, None))

    def on_host_detail_loaded(self, message: HostDetailLoaded) -> None:
        if message.error is not None:
            self.query_one("#procs", Static).update(Text.assemble(
                ("unreachable: ", "red"), message.error))
            return
        assert message.facts is not None
        self.facts = message.facts
        self.query_one("#facts", Static).update(facts_table(message.facts))
        self.query_one("#procs", Static).update(procs_table(message.processes or []))

    def action_close(self) -> None:
        self.dismiss(None)
