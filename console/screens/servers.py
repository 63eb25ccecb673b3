"""The Servers view: vLLM servers with live telemetry, polled per server by thread workers.

Telemetry is scraped every POLL_INTERVAL; the processes are observed less often (an SSH
round trip per server), and at once when the server stops answering, so a crash shows
within one poll. A dead host or server degrades its own row only."""

from __future__ import annotations

import time
from functools import partial
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from llmops.console.messages import (
    ActionDone,
    RollbackPreviewed,
    ServerPolled,
    ServerProgress,
    ServerRestarted,
    ServersLoaded,
)
from llmops.console.screens.acting import error_text, notify_done, start_action
from llmops.console.screens.base import View
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.rollback_offer import confirm_rollback, preview_message
from llmops.console.screens.server_detail import ServerDetail, ServerLogScreen, crash_text
from llmops.console.screens.server_form import ServerFormScreen
from llmops.console.screens.server_state import (
    COLUMNS,
    KIND,
    ServerState,
    empty_text,
    poll_once,
    row_cells,
    row_matches,
)
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.base import HasLogs, Restartable
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Change
from llmops.rollback.journal import Event
from llmops.rollback.telemetry import TelemetryPoller

POLL_INTERVAL = 2.0
OBSERVE_INTERVAL = 10.0


class ServersView(View):
    """Servers with state, tokens/s, p95 and KV cache; the selected one in detail below."""

    view_id = "servers"
    title = "Servers"
    CHANGING = frozenset({"new", "edit", "stop", "restart", "rollback"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New", id="servers.new", tooltip="Start a new vLLM server (a form)"),
        Binding("e", "edit", "Edit", id="servers.edit",
                tooltip="Change the selected server's spec (an action; ctrl+z undoes it)"),
        Binding("x", "stop", "Stop", id="servers.stop",
                tooltip="Stop and remove the server (an action; ctrl+z brings it back)"),
        Binding("R", "restart", "Restart", id="servers.restart",
                tooltip="Restart the server as it is (same spec)"),
        Binding("l", "logs", "Logs", id="servers.logs", tooltip="The server's log tail"),
        Binding("ctrl+z", "rollback", "Roll back", id="servers.rollback",
                tooltip="Undo the last action on the selected server (confirm first)"),
    ]

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.servers: dict[str, ServerState] = {}
        self.hosts: list[str] = []
        self.last_action: dict[str, tuple[int, str]] = {}
        self.acting: dict[str, str] = {}  # action summary -> server name
        self.filter_text = ""
        self.loaded = False
        self.poller: TelemetryPoller | None = None

    def compose(self) -> ComposeResult:
        yield Static(empty_text(self.context.read_only), classes="empty-state",
                     id="servers-empty")
        yield ResourceTable(id="servers-table")
        yield ServerDetail(id="server-detail")

    def on_mount(self) -> None:
        self.query_one(ResourceTable).add_columns(*COLUMNS)
        self.show_empty(False)
        self._unsubscribe = self.context.engine.subscribe_progress(self._progress_listener)
        self.load()

    def on_unmount(self) -> None:
        self._unsubscribe()
        if self.poller is not None:
            self.poller.close()  # its tunnels: a server's poll must not outlive the view

    # -- workers: they call the layers below and post messages, never touch widgets -------
    @work(thread=True, exclusive=True, exit_on_error=False, group="servers-load",
          description="read the servers from the lab")
    def load(self) -> None:
        lab = self.context.lab
        if self.poller is None:
            self.poller = TelemetryPoller(self.context.engine)
        specs = [s for (kind, _), s in lab.specs().items() if isinstance(s, ServerSpec)]
        hosts = sorted(name for kind, name in lab.specs() if kind == "host")
        undoable = self.context.engine.last_undoables([("server", s.name) for s in specs])
        last = {name: (record.id, record.summary) for (_, name), record in undoable.items()}
        self.post_message(ServersLoaded(specs, hosts, last))

    def poll_server(self, spec: ServerSpec, observe: bool, was_up: bool | None) -> None:
        self.run_worker(partial(self._poll, spec, observe, was_up), thread=True,
                        exclusive=True, exit_on_error=False, group=f"server-poll-{spec.name}",
                        description=f"poll server {spec.name}")

    def _poll(self, spec: ServerSpec, observe: bool, was_up: bool | None) -> None:
        assert self.poller is not None
        self.post_message(poll_once(self.poller, self.context.engine, spec, observe, was_up))

    @work(thread=True, exclusive=True, exit_on_error=False, group="server-rollback-preview",
          description="find and preview the last action on a server")
    def preview_last(self, name: str) -> None:
        record = self.context.engine.last_undoable("server", name)
        if record is None:
            self.post_message(RollbackPreviewed(
                0, None, f"no succeeded action on server {name} to roll back"))
            return
        self.post_message(preview_message(self.context.engine, record.id))

    def _restart(self, spec: ServerSpec) -> None:
        """Journalled by the engine (who, when, the checklist); its progress lines come
        through the engine's listeners like an action's."""
        started = time.monotonic()
        try:
            record = self.context.engine.restart("server", spec.name)
        except Exception as exc:  # noqa: BLE001 - reported to the operator
            error: str | None = error_text(exc)
        else:
            failed = [f"{c.name}: {c.detail}" for c in record.checks if not c.ok]
            error = record.error or ("checks failed: " + "; ".join(failed) if failed else None)
        self.post_message(ServerRestarted(spec.name, error, time.monotonic() - started))

    def _progress_listener(self, _action_id: int, ref: str, line: str) -> None:
        """Runs on the action's thread: only posts a message."""
        if ref.startswith("server/"):
            self.post_message(ServerProgress(ref.removeprefix("server/"), line))

    # -- messages (event loop) ----------------------------------------------------------
    def on_servers_loaded(self, message: ServersLoaded) -> None:
        self.loaded = True
        self.hosts, self.last_action = message.hosts, message.last_action
        names = {s.name for s in message.specs}
        for gone in set(self.servers) - names:
            del self.servers[gone]
        for spec in message.specs:
            state = self.servers.get(spec.name)
            if state is None:
                self.servers[spec.name] = ServerState(spec)
                self.schedule_poll(spec.name, 0.0)
            elif state.spec != spec:
                state.spec, state.observed_at = spec, 0.0
                self.schedule_poll(spec.name, 0.0)
        self.rebuild()

    def schedule_poll(self, name: str, delay: float) -> None:
        """Poll `name` after `delay` seconds; a newer schedule replaces this one."""
        state = self.servers.get(name)
        if state is not None:
            state.timer += 1
            self.set_timer(max(delay, 0.01), partial(self.poll_due, name, state.timer))

    def poll_due(self, name: str, timer: int) -> None:
        state = self.servers.get(name)
        if state is None or state.timer != timer or state.in_flight:
            return
        if self.modal_open:
            self.schedule_poll(name, 1.0)
            return
        state.in_flight = True
        observe = time.monotonic() - state.observed_at >= OBSERVE_INTERVAL
        self.poll_server(state.spec, observe, state.sample.up if state.sample else None)

    def on_server_polled(self, message: ServerPolled) -> None:
        state = self.servers.get(message.spec.name)
        if state is None:
            return
        state.in_flight = False
        if state.spec != message.spec:  # the spec changed while this poll ran
            self.schedule_poll(state.spec.name, 0.0)
            return
        state.sample, state.recent = message.sample, message.recent
        if message.state is not None:
            state.state, state.observed_at = message.state, time.monotonic()
            state.log_tail = message.log_tail or []
        self.update_row(state.spec.name)
        if state.spec.name == self.selected_name:
            self.show_detail()
        self.schedule_poll(state.spec.name, POLL_INTERVAL)

    def on_server_progress(self, message: ServerProgress) -> None:
        state = self.servers.get(message.name)
        if state is not None:
            state.progress = message.line
            if state.spec.name == self.selected_name:
                self.show_detail()

    def on_server_restarted(self, message: ServerRestarted) -> None:
        self.finish(message.name)
        if message.error is None:
            self.notify(f"restarted in {message.seconds:.1f}s", title=f"server {message.name}")
        else:
            self.notify(message.error, title=f"restart of {message.name} failed",
                        severity="error", timeout=12)

    def on_action_done(self, message: ActionDone) -> None:
        notify_done(self, message)
        if (name := self.acting.pop(message.summary, None)) is not None:
            self.finish(name)
        self.load()

    def finish(self, name: str) -> None:
        """An action or restart on `name` ended: observe it again at once."""
        if (state := self.servers.get(name)) is not None:
            state.busy, state.progress, state.observed_at = None, None, 0.0
            self.schedule_poll(name, 0.0)
            self.update_row(name)
            self.update_bindings()

    def on_rollback_previewed(self, message: RollbackPreviewed) -> None:
        confirm_rollback(self, self.context, message)

    def journal_event(self, event: Event) -> None:
        """Actions by anyone (History's rollbacks included) change the list and the offers."""
        if event.event in ("succeeded", "failed"):
            for state in self.servers.values():
                state.observed_at = 0.0
            self.load()

    # -- rendering ----------------------------------------------------------------------
    def show_empty(self, empty: bool) -> None:
        self.query_one("#servers-empty").display = empty
        self.query_one(ResourceTable).display = not empty
        self.query_one(ServerDetail).display = not empty

    def rebuild(self) -> None:
        table = self.query_one(ResourceTable)
        selected = table.selected_key
        table.clear()
        for name in sorted(self.servers):
            if row_matches(self.servers[name], self.filter_text):
                table.add_row(*row_cells(self.servers[name]), key=name)
        if selected:
            table.select_key(selected)
        self.show_empty(self.loaded and not self.servers)
        self.show_detail()
        self.update_bindings()

    def update_row(self, name: str) -> None:
        table = self.query_one(ResourceTable)
        state = self.servers.get(name)
        if state is None or name not in table.rows:
            return
        for column, cell in zip(table.columns, row_cells(state), strict=False):
            table.update_cell(name, column, cell)

    def show_detail(self) -> None:
        state = self.selected
        detail = self.query_one(ServerDetail)
        if state is None:
            return
        crash = None
        if state.state not in ("up", "starting", "sleeping", "observing") and not state.busy:
            crash = crash_text(state.spec.name, state.state, state.log_tail,
                               self.last_action.get(state.spec.name), self.context.read_only)
        detail.show(state.spec, state.busy or state.state, state.recent, crash,
                    f"{state.busy}: {state.progress}" if state.busy and state.progress else None)

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()
        self.update_bindings()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild()

    def refresh_data(self) -> None:
        for state in self.servers.values():
            state.observed_at = 0.0
        self.load()

    # -- actions ------------------------------------------------------------------------
    @property
    def selected_name(self) -> str | None:
        return self.query_one(ResourceTable).selected_key

    @property
    def selected(self) -> ServerState | None:
        key = self.selected_name
        return self.servers.get(key) if key else None

    def can_run(self, action: str) -> bool | None:
        if action == "logs" and not isinstance(KIND, HasLogs):
            return False  # offered by capability, as k9s does
        if action == "restart" and not isinstance(KIND, Restartable):
            return False
        if action == "new":
            return True
        state = self.selected
        if state is None:
            return None
        if action in ("edit", "stop", "restart") and state.busy:
            return None
        if action == "rollback" and state.spec.name not in self.last_action:
            return None
        return True

    def act(self, name: str, busy: str, changes: list[Change], summary: str) -> None:
        if (state := self.servers.get(name)) is not None:
            state.busy, state.progress = busy, None
            self.update_row(name)
        self.acting[summary] = name
        start_action(self, self.context.engine, changes, summary)
        self.update_bindings()

    def action_new(self, initial: dict[str, Any] | None = None) -> None:
        def submitted(spec: ServerSpec | None) -> None:
            if spec is not None:
                self.act(spec.name, "starting", [Change("server", spec.name, spec)],
                         f"server {spec.name} up")

        if initial is None and len(self.hosts) == 1:
            initial = {"host": self.hosts[0]}
        self.app.push_screen(ServerFormScreen(self.hosts, initial=initial), submitted)

    def action_edit(self) -> None:
        if (state := self.selected) is None:
            return
        before = state.spec

        def submitted(spec: ServerSpec | None) -> None:
            if spec is None:
                return
            old, new = before.model_dump(), spec.model_dump()
            diff = ", ".join(f"{k} {old[k]}→{new[k]}" for k in new if old.get(k) != new[k])
            self.act(spec.name, "changing", [Change("server", spec.name, spec)],
                     f"server {spec.name}: {diff}")

        self.app.push_screen(ServerFormScreen(self.hosts, spec=before), submitted)

    def action_stop(self) -> None:
        if (state := self.selected) is None:
            return
        name = state.spec.name

        def answered(yes: bool | None) -> None:
            if yes:
                self.act(name, "stopping", [Change("server", name, None)], f"server {name} down")

        self.app.push_screen(ConfirmScreen(
            f"Stop server {name}?",
            f"Server {name} is stopped and leaves the lab's desired state.\n"
            "This is an action: ctrl+z (here or on History) brings it back.", yes="Stop"),
            answered)

    def action_restart(self) -> None:
        if (state := self.selected) is None or not isinstance(KIND, Restartable):
            return
        spec = state.spec

        def answered(yes: bool | None) -> None:
            if yes and (current := self.servers.get(spec.name)) is not None:
                current.busy, current.progress = "restarting", None
                self.update_row(spec.name)
                self.update_bindings()
                self.run_worker(partial(self._restart, spec), thread=True, exclusive=True,
                                exit_on_error=False, group=f"server-restart-{spec.name}",
                                description=f"restart server {spec.name}")

        self.app.push_screen(ConfirmScreen(
            f"Restart server {spec.name}?",
            f"Server {spec.name} is stopped and started again with the same spec; requests "
            "in flight fail. The desired state does not change (nothing to roll back), but "
            "the restart is journalled: History shows who restarted it and when.",
            yes="Restart"), answered)

    def action_logs(self) -> None:
        if (state := self.selected) is not None and isinstance(KIND, HasLogs):
            self.app.push_screen(ServerLogScreen(self.context, state.spec))

    def action_rollback(self) -> None:
        if (state := self.selected) is not None:
            self.preview_last(state.spec.name)
