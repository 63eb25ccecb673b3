"""The one view every resource kind is listed in, configured by the kind's presenter: a table
with the `/` filter, an empty state, a detail pane, and each row polled by its own thread
worker. A resource whose host does not answer degrades its own row only (greyed, its state
says why) and is polled again after a growing back-off. Polling pauses while a dialog or
another screen covers the view. What the keys do is in resource_verbs.py."""

from __future__ import annotations

import time
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import Static

from llmops.console.messages import (
    ResourcePolled,
    ResourceProgress,
    ResourcesCounted,
    ResourcesLoaded,
)
from llmops.console.screens.base import View, ViewContext
from llmops.console.screens.detail_pane import ResourceDetail, problem_text
from llmops.console.screens.presenter import Presenter
from llmops.console.screens.resource_poll import UNREACHABLE, RowState, backoff
from llmops.console.widgets import render
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.base import HasProgress, HasTelemetry, Spec
from llmops.rollback.records import Event
from llmops.rollback.telemetry import TelemetryPoller


class ResourceView(View):
    """Rows of one kind, polled; `presenter` says how they read (set by `resource_view`)."""

    presenter: ClassVar[Presenter]
    verb_of: ClassVar[dict[str, str]] = {}
    """action name -> the verb it runs, where the presenter renamed it ("add" -> "new")."""

    def __init__(self, context: ViewContext) -> None:
        super().__init__(context)
        self.rows: dict[str, RowState] = {}
        self.names: dict[str, list[str]] = {}
        self.last_action: dict[str, tuple[int, str]] = {}
        self.acting: dict[str, str] = {}  # action summary -> resource name
        self.filter_text = ""
        self.loaded = False
        self.poller: TelemetryPoller | None = None
        self.reloads = 0

    def compose(self) -> ComposeResult:
        yield Static(self.presenter.empty_text(self.context.read_only), classes="empty-state",
                     id=f"{self.view_id}-empty")
        yield ResourceTable(id=f"{self.view_id}-table")
        if self.presenter.pane:
            yield ResourceDetail(self.presenter, id=f"{self.view_id}-detail")

    def on_mount(self) -> None:
        self.query_one(ResourceTable).add_columns(*self.presenter.columns)
        self.show_empty(False)
        self._unsubscribe = self.context.engine.subscribe_progress(self._progress_listener)
        self.load()
        self.set_interval(1.0, self.repaint_countdowns)

    def on_unmount(self) -> None:
        self._unsubscribe()
        if self.poller is not None:
            self.poller.close()  # its tunnels: a poll must not outlive the view

    # -- workers: they call the layers below and post messages, never touch widgets -------
    @work(thread=True, exclusive=True, exit_on_error=False, group="resources-load",
          description="read a kind's resources from the lab")
    def load(self) -> None:
        presenter, lab, engine = self.presenter, self.context.lab, self.context.engine
        if self.poller is None and isinstance(presenter.kind_impl, HasTelemetry):
            self.poller = TelemetryPoller(engine)
        every = lab.specs()
        specs = [spec for (kind, _), spec in every.items() if kind == presenter.kind]
        names = {kind: sorted(n for k, n in every if k == kind)
                 for kind in set(presenter.form.refs.values())}
        undoable = engine.last_undoables([(presenter.kind, s.name) for s in specs])
        last = {name: (record.id, record.summary) for (_, name), record in undoable.items()}
        cached = {s.name: lab.journal.observed(presenter.kind, s.name) or {} for s in specs}
        self.post_message(ResourcesLoaded(specs, names, last, cached))

    def poll(self, row: RowState, observe: bool) -> None:
        spec, was_up = row.spec, row.sample.up if row.sample else None
        self.run_worker(partial(self._poll, spec, observe, was_up), thread=True, exclusive=True,
                        exit_on_error=False, group=f"poll-{spec.name}",
                        description=f"poll {self.presenter.kind} {spec.name}")

    def _poll(self, spec: Spec, observe: bool, was_up: bool | None) -> None:
        self.post_message(self.presenter.poll(self.context, self.poller, spec, observe, was_up))

    def _progress_listener(self, _action_id: int, ref: str, line: str) -> None:
        """Runs on the action's thread: only posts a message."""
        if ref.startswith(prefix := f"{self.presenter.kind}/"):
            self.post_message(ResourceProgress(ref.removeprefix(prefix), line))

    # -- polling (event loop) -----------------------------------------------------------
    def on_resources_loaded(self, message: ResourcesLoaded) -> None:
        self.loaded = True
        self.names, self.last_action = message.names, message.last_action
        wanted = {spec.name: spec for spec in message.specs}
        for gone in set(self.rows) - set(wanted):
            del self.rows[gone]
        for name, spec in wanted.items():
            row = self.rows.get(name)
            if row is None:
                self.rows[name] = row = RowState(spec, self.presenter.initial_state,
                                                 facts=message.cached.get(name) or None)
                if name in self.acting.values():  # committed by an action still running
                    row.busy = self.presenter.busy_words["new"]
                self.schedule_poll(name, 0.0)
            elif row.spec != spec:
                row.spec, row.observed_at, row.failures = spec, 0.0, 0
                self.schedule_poll(name, 0.0)
        self.rebuild()
        self.reloads += 1  # this load's timer replaces any other
        self.set_timer(self.presenter.reload_interval, partial(self.reload_due, self.reloads))

    def reload_due(self, reload: int) -> None:
        if reload != self.reloads:
            return
        if self.modal_open:
            self.set_timer(1.0, partial(self.reload_due, reload))
        else:
            self.load()

    def schedule_poll(self, name: str, delay: float) -> None:
        """Poll `name` after `delay` seconds; a newer schedule replaces this one."""
        if (row := self.rows.get(name)) is None:
            return
        row.timer += 1
        delay = max(delay, 0.01)  # set_timer(0) divides by zero
        row.next_poll_at = time.monotonic() + delay
        self.set_timer(delay, partial(self.poll_due, name, row.timer))

    def poll_due(self, name: str, timer: int) -> None:
        row = self.rows.get(name)
        if row is None or row.timer != timer or row.in_flight:
            return
        if self.modal_open:
            self.schedule_poll(name, 1.0)
            return
        self.start_poll(row)

    def start_poll(self, row: RowState, now: bool = False) -> None:
        """Poll `row` (its state too when due, or `now`: the operator asked)."""
        presenter = self.presenter
        since = time.monotonic() - row.observed_at
        observe = now or row.failures > 0 or since >= presenter.observe_interval
        if not observe and not isinstance(presenter.kind_impl, (HasTelemetry, HasProgress)):
            self.schedule_poll(row.name, presenter.observe_interval - since)  # nothing to do yet
            return
        row.in_flight, row.next_poll_at = True, None
        if presenter.polling_state and row.state != "up":
            row.state = presenter.polling_state
        self.update_row(row.name)
        self.poll(row, observe)

    def on_resource_polled(self, message: ResourcePolled) -> None:
        row = self.rows.get(message.spec.name)
        if row is None:
            return
        row.in_flight = False
        if row.spec != message.spec:  # the spec changed while this poll ran
            self.schedule_poll(row.name, 0.0)
            return
        if message.sample is not None:
            row.sample, row.recent = message.sample, message.recent
        if message.facts is not None:
            row.facts = message.facts
        if message.points is not None:
            row.points = message.points
        if message.report is not None:
            row.report = message.report
        if message.summary is not None:
            row.summary = message.summary
        if message.notes is not None:
            row.notes = message.notes
        if message.state is not None:
            row.state, row.reason, row.observed_at = message.state, message.reason, time.monotonic()
            row.log_tail = message.log_tail or []
            row.failures = row.failures + 1 if message.state == UNREACHABLE else 0
        interval = backoff(row.failures) if row.failures else self.presenter.poll_interval
        self.schedule_poll(row.name, interval)
        shown = self.query_one(ResourceTable).row_height(row.name)
        if shown is not None and shown != self.presenter.row_height(row):
            self.rebuild()  # a row's height is fixed when it is added (a host's GPUs)
        else:
            self.update_row(row.name)
            self.count()
            if row.name == self.selected_name:
                self.show_detail()

    def on_resource_progress(self, message: ResourceProgress) -> None:
        if (row := self.rows.get(message.name)) is not None:
            row.progress = message.line
            if row.name == self.selected_name:
                self.show_detail()

    def journal_event(self, event: Event) -> None:
        """Actions by anyone (History's rollbacks included) change the list and the offers; a
        commit puts a new resource's row up while its action runs (the view said "No X yet"
        until its next reload, 10 s later)."""
        if event.event == "committed":
            self.load()
        elif event.event in ("succeeded", "failed"):
            for row in self.rows.values():
                row.observed_at = 0.0
            self.load()

    # -- rendering ----------------------------------------------------------------------
    def cells(self, row: RowState) -> list[str | Text]:
        """The presenter's cells; a row whose host does not answer is greyed but its state."""
        cells = self.presenter.cells(row)
        if row.state != UNREACHABLE:
            return cells
        columns = self.presenter.columns
        state_at = columns.index("state") if "state" in columns else -1
        return [c if i == state_at else render.dimmed(c) for i, c in enumerate(cells)]

    def rebuild(self) -> None:
        rows = sorted(self.rows.items())
        self.query_one(ResourceTable).fill(
            ((name, self.cells(row), self.presenter.row_height(row)) for name, row in rows),
            self.filter_text)
        self.show_empty(self.loaded and not self.rows)
        self.count()
        self.show_detail()
        self.update_bindings()

    def update_row(self, name: str) -> None:
        if (row := self.rows.get(name)) is not None:
            self.query_one(ResourceTable).update_row(name, self.cells(row))

    def repaint_countdowns(self) -> None:
        for name, row in self.rows.items():
            if row.state == UNREACHABLE:
                self.update_row(name)

    def count(self) -> None:
        up = sum(1 for row in self.rows.values() if row.state == "up")
        self.post_message(ResourcesCounted(self.presenter.kind, up, len(self.rows)))

    def show_empty(self, empty: bool) -> None:
        self.query_one(f"#{self.view_id}-empty").display = empty
        self.query_one(ResourceTable).display = not empty
        for pane in self.query(ResourceDetail):
            pane.display = not empty

    def show_detail(self) -> None:
        presenter, row = self.presenter, self.selected
        if not presenter.pane or row is None:
            return
        problem = None
        if row.state not in (*presenter.serving, presenter.initial_state) and not row.busy:
            read_only = self.context.read_only
            restart = "restart" in presenter.verbs() and not read_only
            problem = problem_text(row.name, row.state, row.reason, row.log_tail,
                                   None if read_only else self.last_action.get(row.name),
                                   presenter.key("restart").key if restart else None)
        progress = f"{row.busy}: {row.progress}" if row.busy and row.progress else None
        latest = row.recent[-1] if row.recent else None
        pane = self.query_one(ResourceDetail)
        pane.show(presenter.detail_title(row), presenter.stats(latest), row.recent, progress,
                  problem)
        pane.show_work(presenter.progress_bar(row), row.points,
                       presenter.report_text(row.report), row.log_tail, row.notes)

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()
        self.update_bindings()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild()

    def refresh_data(self) -> None:
        for row in self.rows.values():
            row.observed_at = 0.0
        self.load()

    @property
    def selected_name(self) -> str | None:
        return self.query_one(ResourceTable).selected_key

    @property
    def selected(self) -> RowState | None:
        key = self.selected_name
        return self.rows.get(key) if key else None
