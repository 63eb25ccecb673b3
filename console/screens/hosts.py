"""The Hosts view: one row per host, polled by thread workers; a dead host greys its own row."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from llmops.console.messages import (
    ActionDone,
    FingerprintFetched,
    HostProbed,
    HostsLoaded,
    HostsSummary,
)
from llmops.console.screens.acting import error_text, notify_done, start_action
from llmops.console.screens.base import View
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.host_detail import HostDetailScreen
from llmops.console.screens.host_form import AddHostScreen
from llmops.console.widgets import render
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.host.spec import HostSpec
from llmops.rollback.engine import Change
from llmops.rollback.journal import Event

UP_INTERVAL = 30.0
RELOAD_INTERVAL = 10.0
COLUMNS = ("name", "state", "address", "os", "cpu / ram", "gpus (mem, util)", "vllm", "peft")


def backoff(failures: int) -> float:
    """Seconds to the next probe of a host that did not answer: 5, 10, 20, 40, 60, 60..."""
    return min(60.0, 5.0 * 2 ** max(0, failures - 1))


@dataclass
class HostState:
    """What the view knows about one host (UI thread only)."""

    spec: HostSpec
    facts: dict[str, Any] | None = None
    state: str = "probing"
    reason: str | None = None
    failures: int = 0
    next_probe_at: float | None = None
    in_flight: bool = False


class HostsView(View):
    """Hosts with their OS, CPU/RAM, GPUs and vLLM/peft versions; `a` adds, `p` probes."""

    view_id = "hosts"
    title = "Hosts"
    CHANGING = frozenset({"add", "remove"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail", id="hosts.open", tooltip="Full probe and processes"),
        Binding("a", "add", "Add", id="hosts.add", tooltip="Add a host (local or over SSH)"),
        Binding("d", "remove", "Remove", id="hosts.remove", tooltip="Remove the selected host"),
        Binding("p", "probe", "Probe", id="hosts.probe", tooltip="Probe the selected host now"),
    ]

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.hosts: dict[str, HostState] = {}
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield ResourceTable(id="hosts-table")

    def on_mount(self) -> None:
        self.query_one(ResourceTable).add_columns(*COLUMNS)
        self.load()
        self.set_interval(1.0, self.repaint_countdowns)

    # -- workers: they call the layers below and post messages, never touch widgets -------
    @work(thread=True, exclusive=True, exit_on_error=False, group="hosts-load",
          description="read the hosts from the lab")
    def load(self) -> None:
        lab = self.context.lab
        specs = [s for (kind, _), s in lab.specs().items() if kind == "host"]
        cached = {s.name: lab.journal.observed("host", s.name) or {} for s in specs}
        self.post_message(HostsLoaded([s for s in specs if isinstance(s, HostSpec)], cached))

    def probe_host(self, spec: HostSpec) -> None:
        self.run_worker(partial(self._probe, spec), thread=True, exclusive=True,
                        exit_on_error=False, group=f"probe-{spec.name}",
                        description=f"probe host {spec.name}")

    def _probe(self, spec: HostSpec) -> None:
        started = time.monotonic()
        try:
            facts = self.context.engine.probe(spec, record=not self.context.read_only)
        except Exception as exc:  # noqa: BLE001 - any failure degrades this host's row only
            self.post_message(HostProbed(spec.name, None, error_text(exc),
                                         time.monotonic() - started))
            return
        self.post_message(HostProbed(spec.name, facts, None, time.monotonic() - started))

    @work(thread=True, exclusive=True, exit_on_error=False, group="fingerprint",
          description="fetch a host key fingerprint")
    def fetch_fingerprint(self, spec: HostSpec) -> None:
        try:
            key_type, fp = self.context.engine.host_key(spec.address or "", spec.port)
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(FingerprintFetched(spec, None, None, error_text(exc)))
            return
        self.post_message(FingerprintFetched(spec, key_type, fp, None))

    # -- messages (event loop) ----------------------------------------------------------
    def on_hosts_loaded(self, message: HostsLoaded) -> None:
        names = {s.name for s in message.specs}
        for gone in set(self.hosts) - names:
            del self.hosts[gone]
        for spec in message.specs:
            state = self.hosts.get(spec.name)
            if state is None or state.spec != spec:
                cached = message.cached.get(spec.name) or None
                self.hosts[spec.name] = HostState(spec, facts=cached)
                self.schedule_probe(spec.name, 0.0)
        self.rebuild()
        self.set_timer(RELOAD_INTERVAL, self.reload_when_visible)

    def reload_when_visible(self) -> None:
        if self.modal_open:
            self.set_timer(1.0, self.reload_when_visible)
        else:
            self.load()

    def schedule_probe(self, name: str, delay: float) -> None:
        """Probe `name` after `delay` seconds; waits while a modal covers the screen."""
        state = self.hosts.get(name)
        if state is None:
            return
        delay = max(delay, 0.01)  # set_timer(0) divides by zero
        state.next_probe_at = time.monotonic() + delay
        self.set_timer(delay, partial(self.probe_due, name, state.spec))

    def probe_due(self, name: str, spec: HostSpec) -> None:
        state = self.hosts.get(name)
        if state is None or state.spec != spec or state.in_flight:
            return
        if state.next_probe_at is not None and state.next_probe_at > time.monotonic() + 0.05:
            return  # a newer schedule replaced this timer
        if self.modal_open:
            self.schedule_probe(name, 1.0)
            return
        self.start_probe(state)

    def start_probe(self, state: HostState) -> None:
        state.in_flight, state.next_probe_at = True, None
        if state.state != "up":
            state.state = "probing"
        self.update_row(state.spec.name)
        self.probe_host(state.spec)

    def on_host_probed(self, message: HostProbed) -> None:
        state = self.hosts.get(message.name)
        if state is None:
            return
        state.in_flight = False
        if message.facts is not None:
            state.facts, state.state, state.reason, state.failures = message.facts, "up", None, 0
            self.schedule_probe(message.name, UP_INTERVAL)
        else:
            state.state, state.reason = "unreachable", message.error
            state.failures += 1
            self.schedule_probe(message.name, backoff(state.failures))
        self.rebuild()

    def on_fingerprint_fetched(self, message: FingerprintFetched) -> None:
        spec = message.spec
        if message.error is not None or message.fingerprint is None:
            self.notify(message.error or "no host key", title=f"cannot reach {spec.address}",
                        severity="error", timeout=10)
            return
        body = Text.assemble(
            ("The host at ", ""), (f"{spec.address}:{spec.port}", "bold"),
            (" presents this key:\n\n", ""), (f"  {message.key_type}\n  {message.fingerprint}\n\n",
                                              "bold cyan"),
            "Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host.\n"
            f"Trust it and add host {spec.name}?")
        fingerprint = message.fingerprint

        def answered(yes: bool | None) -> None:
            if yes:
                self.act([Change("host", spec.name, spec)], f"host {spec.name} added",
                         trust={spec.name: fingerprint})

        self.app.push_screen(ConfirmScreen("Trust this host key?", body, yes="Trust and add"),
                             answered)

    def on_action_done(self, message: ActionDone) -> None:
        notify_done(self, message)
        self.load()

    def journal_event(self, event: Event) -> None:
        """Actions by anyone (CLI included, on the next reload) change the host list."""
        if event.event in ("succeeded", "failed") and not self.modal_open:
            self.load()

    # -- rendering ----------------------------------------------------------------------
    def row_cells(self, state: HostState) -> list[str | Text]:
        spec, facts = state.spec, state.facts
        retry = (state.next_probe_at - time.monotonic()
                 if state.state == "unreachable" and state.next_probe_at else None)
        user = f"{spec.user}@" if spec.user else ""
        address = "this machine" if spec.local else f"{user}{spec.address}:{spec.port}"
        cells: list[str | Text] = [
            spec.name, address, str((facts or {}).get("os", "?")), render.cpu_ram_cell(facts),
            render.gpu_cell(facts), render.package_cell(facts, "vllm"),
            render.package_cell(facts, "peft")]
        if state.state == "unreachable":
            cells = [render.dimmed(c) for c in cells]
        reason = render.short_reason(state.reason, 36) if state.reason else None
        cells.insert(1, render.state_cell(state.state, reason, retry))
        return cells

    def passes_filter(self, state: HostState) -> bool:
        if not self.filter_text:
            return True
        plain = " ".join(c.plain if isinstance(c, Text) else c for c in self.row_cells(state))
        return self.filter_text.lower() in plain.lower()

    def rebuild(self) -> None:
        table = self.query_one(ResourceTable)
        selected = table.selected_key
        table.clear()
        for name in sorted(self.hosts):
            state = self.hosts[name]
            if self.passes_filter(state):
                gpus = len((state.facts or {}).get("gpus") or [])
                table.add_row(*self.row_cells(state), key=name, height=max(1, gpus))
        if selected:
            table.select_key(selected)
        up = sum(1 for s in self.hosts.values() if s.state == "up")
        self.post_message(HostsSummary(up, len(self.hosts)))
        self.update_bindings()

    def update_row(self, name: str) -> None:
        table = self.query_one(ResourceTable)
        state = self.hosts.get(name)
        if state is None or name not in table.rows:
            return
        for column, cell in zip(table.columns, self.row_cells(state), strict=False):
            table.update_cell(name, column, cell)

    def repaint_countdowns(self) -> None:
        for name, state in self.hosts.items():
            if state.state == "unreachable":
                self.update_row(name)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild()

    def refresh_data(self) -> None:
        self.load()

    # -- actions ------------------------------------------------------------------------
    @property
    def selected(self) -> HostState | None:
        key = self.query_one(ResourceTable).selected_key
        return self.hosts.get(key) if key else None

    def can_run(self, action: str) -> bool | None:
        if action in ("open", "remove", "probe"):
            return True if self.selected is not None else None
        return True

    def act(self, changes: list[Change], summary: str,
            trust: dict[str, str] | None = None) -> None:
        start_action(self, self.context.engine, changes, summary, trust=trust)

    def action_open(self) -> None:
        if (state := self.selected) is not None:
            self.app.push_screen(HostDetailScreen(self.context, state.spec, state.facts))

    def action_add(self, initial: dict[str, Any] | None = None) -> None:
        def submitted(spec: HostSpec | None) -> None:
            if spec is None:
                return
            if spec.local:
                self.act([Change("host", spec.name, spec)], f"host {spec.name} added")
            else:
                self.fetch_fingerprint(spec)

        self.app.push_screen(AddHostScreen(initial or {}), submitted)

    def action_remove(self) -> None:
        if (state := self.selected) is None:
            return
        name = state.spec.name

        def answered(yes: bool | None) -> None:
            if yes:
                self.act([Change("host", name, None)], f"host {name} removed")

        self.app.push_screen(ConfirmScreen(
            f"Remove host {name}?",
            f"Host {name} leaves the lab (its files on the host stay).\n"
            "This is an action: ctrl+z on History brings it back.", yes="Remove"), answered)

    def action_probe(self) -> None:
        if (state := self.selected) is not None and not state.in_flight:
            self.start_probe(state)
