"""A kind's presenter: what the one ResourceView needs to list, watch and change resources of
that kind. The columns and cells of its rows, its form (fields from the spec model), its
detail pane and polling; the words of its keys. Which keys it offers follows from the kind's
capabilities (logs, restart, bench), plus any spec toggles it declares (a run's stop and
resume); a kind that keeps progress records or a report gets them in its detail pane. A new
kind is a presenter (console/presenters/) and one line in console/screens/registry.py."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.binding import Binding

from llmops.console.screens.base import empty_state
from llmops.console.screens.resource_poll import UNREACHABLE, RowState, poll_by_capability
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets import render
from llmops.console.widgets.loss_chart import Chart
from llmops.ops.kinds.base import Benchable, HasLogs, HasTelemetry, Kind, Restartable, Sample, Spec
from llmops.rollback.kinds import KINDS

if TYPE_CHECKING:
    from textual.screen import Screen

    from llmops.console.messages import ResourcePolled
    from llmops.console.screens.base import ViewContext
    from llmops.rollback.telemetry import TelemetryPoller


@dataclass(frozen=True)
class Key:
    """How one verb of a resource view reads: its key, footer word and help (`{kind}` is the
    kind's name); `action` names the action where it is not the verb ("add" for new)."""

    key: str
    description: str
    tooltip: str
    action: str = ""
    show: bool = True
    """In the footer (every key is in the help and the palette)."""


KEYS: dict[str, Key] = {
    "open": Key("enter", "Detail", "The selected {kind} in full"),
    "new": Key("n", "New", "Create a {kind} (a form; an action, ctrl+z undoes it)"),
    "edit": Key("e", "Edit", "Change the selected {kind}'s spec (an action; ctrl+z undoes it)"),
    "remove": Key("x", "Remove", "Remove the selected {kind} (an action; ctrl+z brings it back)"),
    "poll": Key("p", "Poll", "Look at the selected {kind} again now"),
    "restart": Key("R", "Restart", "Restart the {kind} as it is (same spec)"),
    "logs": Key("l", "Logs", "The {kind}'s log tail"),
    "bench": Key("b", "Bench", "A bounded load test of the selected {kind}: tokens/s, "
                 "latency p50/p95, cost per token", show=False),
    "rollback": Key("ctrl+z", "Roll back",
                    "Undo the last action on the selected {kind} (confirm first)"),
}
"""Every verb a resource view knows, in footer order, with its default words."""
CAPABILITY: dict[str, type] = {"logs": HasLogs, "restart": Restartable, "bench": Benchable}
"""Verbs offered only where the kind implements the capability (k9s's way)."""
CHANGING = frozenset({"new", "edit", "remove", "restart", "rollback"})
"""Verbs that change the lab or a host: gone in read-only mode (a presenter's toggles too)."""


@dataclass(frozen=True)
class Toggle:
    """A key that sets one spec field to one value (a run's stop and resume): an action like
    an edit, offered while the selected spec holds another value; ctrl+z undoes it."""

    verb: str
    key: Key
    field: str
    value: Any
    busy: str
    """The row's word while the action runs ("stopping")."""
    done: str
    """The action's summary word ("stopped": `run r1 stopped`)."""
    confirm: str = ""
    """What the dialog asks first (none: no dialog)."""


@dataclass(frozen=True)
class Opens:
    """A key that opens one of the presenter's screens on the selected resource (an index's
    query box; `Presenter.open_screen` makes it). The screen changes nothing by itself, so a
    read-only console keeps the key."""

    verb: str
    key: Key


@dataclass(frozen=True)
class Spark:
    """One sparkline of the detail pane: its widget key, its label, the metric it draws."""

    key: str
    label: str
    metric: str


@dataclass(frozen=True)
class Confirm:
    """What to ask before a spec becomes an action, and what answering yes trusts."""

    title: str
    body: RenderableType
    yes: str
    trust: dict[str, str] = field(default_factory=dict)
    spec: Spec | None = None
    """The spec to act on, where the host filled something in (an adapter's sha256)."""


class Presenter:
    """Defaults that fit any kind; a kind's presenter overrides what reads otherwise."""

    kind: ClassVar[str]
    view_id: ClassVar[str]
    """The tab's id (default: the kind's plural, "servers")."""
    title: ClassVar[str]
    """The tab's title (default: "Servers")."""
    columns: ClassVar[tuple[str, ...]] = ("name", "state")
    keys: ClassVar[Mapping[str, Key]] = {}
    """This kind's own words for a verb, over KEYS."""
    leave_out: ClassVar[frozenset[str]] = frozenset({"open", "poll"})
    """Verbs not offered though the kind could (open needs `detail_screen`)."""
    form: ClassVar[FormLayout] = FormLayout()
    what: ClassVar[str] = ""
    """What the empty view says will appear here."""
    cli: ClassVar[str] = ""
    """The command that makes one, for the empty view."""
    created: ClassVar[str] = "added"
    removed: ClassVar[str] = "removed"
    busy_words: ClassVar[Mapping[str, str]] = {
        "new": "creating", "edit": "changing", "remove": "removing", "restart": "restarting",
        "bench": "benchmarking"}
    initial_state: ClassVar[str] = "observing"
    polling_state: ClassVar[str | None] = None
    """The word a row that is not up shows while it is polled ("probing"), if any."""
    serving: ClassVar[tuple[str, ...]] = ("up", "starting", "sleeping")
    """States in which it is fine: no log tail fetched, no problem shown."""
    poll_interval: ClassVar[float] = 2.0
    observe_interval: ClassVar[float] = 10.0
    """Telemetry every poll; the state (a round trip to the host) this often."""
    reload_interval: ClassVar[float] = 10.0
    """How often the list is read again (changes made by the CLI)."""
    pane: ClassVar[bool] = False
    """A detail pane under the table for the selected row."""
    sparks: ClassVar[tuple[Spark, ...]] = ()
    bench_load: ClassVar[tuple[int, int, int]] = (32, 4, 32)
    """A load test's requests, concurrency and max tokens (`llmops KIND bench`'s defaults)."""
    leaves: ClassVar[str] = "leaves the lab's desired state"
    """What a removal does, in the confirm dialog."""
    restart_note: ClassVar[str] = ""
    toggles: ClassVar[tuple[Toggle, ...]] = ()
    """Keys that set a spec field (offered after remove), each an action."""
    opens: ClassVar[tuple[Opens, ...]] = ()
    """Keys that open a screen of the presenter's on the selected resource (after toggles)."""
    chart: ClassVar[Chart | None] = None
    """A chart of the progress records in the detail pane (a kind with HasProgress)."""
    tail_lines: ClassVar[int] = 0
    """Log lines the detail pane always shows (a kind with HasLogs); 0: only when it is not
    serving, as the reason why."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.view_id = cls.__dict__.get("view_id") or f"{cls.kind}s"
        cls.title = cls.__dict__.get("title") or cls.view_id.capitalize()

    # -- what the kind is and offers ------------------------------------------------------
    @property
    def kind_impl(self) -> Kind:
        return KINDS[self.kind]

    @property
    def spec_model(self) -> type[Spec]:
        return self.kind_impl.Spec

    def verbs(self) -> list[str]:
        kind = self.kind_impl
        offered = [v for v in KEYS if v not in self.leave_out
                   and (v not in CAPABILITY or isinstance(kind, CAPABILITY[v]))]
        at = offered.index("remove") + 1 if "remove" in offered else len(offered)
        return [*offered[:at], *(t.verb for t in self.toggles), *(o.verb for o in self.opens),
                *offered[at:]]

    def toggle(self, verb: str) -> Toggle | None:
        return next((t for t in self.toggles if t.verb == verb), None)

    def opener(self, verb: str) -> Opens | None:
        return next((o for o in self.opens if o.verb == verb), None)

    def changing(self) -> set[str]:
        """The verbs that change the lab or a host."""
        return {*CHANGING, *(t.verb for t in self.toggles)}

    def key(self, verb: str) -> Key:
        toggle, opener = self.toggle(verb), self.opener(verb)
        found = self.keys.get(verb) or (toggle.key if toggle else
                                        opener.key if opener else KEYS[verb])
        return Key(found.key, found.description, found.tooltip.format(kind=self.kind),
                   found.action or verb, found.show)

    def bindings(self) -> list[Binding]:
        """The view's declared bindings: an id, a tooltip, one per verb it offers."""
        return [Binding(k.key, k.action, k.description, show=k.show,
                        id=f"{self.view_id}.{k.action}", tooltip=k.tooltip)
                for k in map(self.key, self.verbs())]

    # -- rows -----------------------------------------------------------------------------
    def cells(self, row: RowState) -> list[str | Text]:
        return [row.name, self.state_cell(row)]

    def state_cell(self, row: RowState) -> Text:
        retry = (row.next_poll_at - time.monotonic()
                 if row.state == "unreachable" and row.next_poll_at else None)
        reason = render.short_reason(row.reason, 36) if row.reason else None
        return render.state_cell(row.state, reason, retry, row.busy)

    def row_height(self, row: RowState) -> int:
        return 1

    def poll(self, context: ViewContext, poller: TelemetryPoller | None, spec: Spec,
             observe: bool, was_up: bool | None) -> ResourcePolled:
        """Worker side: one poll of one resource (never raises)."""
        polled = poll_by_capability(self.kind_impl, context.engine, poller, spec, observe,
                                    was_up, self.serving, always_tail=self.tail_lines > 0)
        if polled.state is not None and polled.state != UNREACHABLE:
            try:
                polled.notes = self.notes(context, spec, polled.state)
            except Exception:  # noqa: BLE001 - the pane goes without them
                polled.notes = None
        return polled

    def empty_text(self, read_only: bool) -> str:
        key = self.key("new").key if "new" in self.verbs() else None
        return empty_state(self.title, self.what, self.cli, key, read_only)

    # -- the detail -----------------------------------------------------------------------
    def detail_screen(self, context: ViewContext, row: RowState) -> Screen[None]:
        """The screen `enter` opens (where the presenter offers "open")."""
        raise NotImplementedError

    def open_screen(self, verb: str, context: ViewContext, row: RowState) -> Screen[None]:
        """The screen one of `opens` shows for the selected row."""
        raise NotImplementedError(verb)

    def detail_title(self, row: RowState) -> Text:
        fields = " · ".join(f"{k} {v}" for k, v in row.spec.to_toml_dict().items())
        return Text.assemble((row.name, "bold"), f" · {fields} · ", (row.busy or row.state, "bold"))

    def stats(self, sample: Sample | None) -> Text | None:
        """The latest telemetry in one line (None: the kind has none)."""
        kind = self.kind_impl
        if not isinstance(kind, HasTelemetry):
            return None
        if sample is None or not sample.up:
            return Text("no telemetry yet" if sample is None else "not answering",
                        style="grey50" if sample is None else "bold red")
        out = Text()
        for metric in kind.metrics:
            if (value := sample.get(metric.name)) is not None:
                out.append(f"{metric.label} ", style="grey50")
                out.append(f"{metric.fmt.format(value)}  ", style="bold")
        return out

    def notes(self, context: ViewContext, spec: Spec, state: str) -> Text | None:
        """Worker side, when the row is observed (in `state`): the presenter's own lines for
        the detail pane (an adapter's versions), or None."""
        return None

    def form_initial(self, context: ViewContext, initial: dict[str, Any]) -> dict[str, Any]:
        """Worker side, before the New form opens: the presenter's prefill over `initial` (an
        env's packages from its host's recorded probe), or `initial` as it is."""
        return initial

    def progress_bar(self, row: RowState) -> tuple[float, float, Text] | None:
        """(done, total, words) of the work under way (a run's steps and ETA), or None."""
        return None

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        """The kind's report (HasReport) in words, or None to show none."""
        return None

    # -- changes --------------------------------------------------------------------------
    def summary_new(self, spec: Spec) -> str:
        return f"{self.kind} {spec.name} {self.created}"

    def summary_edit(self, before: Spec, spec: Spec) -> str:
        old, new = before.model_dump(), spec.model_dump()
        diff = ", ".join(f"{k} {old[k]}→{new[k]}" for k in new if old.get(k) != new[k])
        return f"{self.kind} {spec.name}: {diff}"

    def summary_remove(self, name: str) -> str:
        return f"{self.kind} {name} {self.removed}"

    def confirm_remove(self, name: str) -> tuple[str, str, str]:
        """(title, body, yes) of the dialog before a removal."""
        word = self.key("remove").description
        return (f"{word} {self.kind} {name}?",
                f"{self.kind.capitalize()} {name} {self.leaves}.\n"
                "This is an action: ctrl+z (here or on History) brings it back.", word)

    def confirm_restart(self, name: str) -> tuple[str, str, str]:
        return (f"Restart {self.kind} {name}?",
                f"{self.kind.capitalize()} {name} is stopped and started again with the same "
                f"spec{self.restart_note}. The desired state does not change (nothing to roll "
                "back), but the restart is journalled: History shows who restarted it and when.",
                "Restart")

    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        """Whether `confirm` must ask the host something before this spec is acted on."""
        return False

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        """Worker side: what the operator must confirm first (a host key); raises when the
        host cannot say."""
        raise NotImplementedError
