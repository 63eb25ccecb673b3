"""Every message the console's workers and widgets post: small dataclasses, typed payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from rich.text import Text

    from llmops.console.screens.presenter import Confirm
    from llmops.ops.kinds.base import Spec
    from llmops.rollback.engine import Engine, RollbackPreview
    from llmops.rollback.lab import Lab
    from llmops.rollback.lock import LockHolder
    from llmops.rollback.records import ActionRecord, Event
    from llmops.rollback.telemetry import Sample


@dataclass
class LabOpened(Message):
    """The lab and its engine are ready; `interrupted` are actions `recover()` found."""

    lab: Lab
    engine: Engine
    empty: bool
    interrupted: list[int] = field(default_factory=list)


@dataclass
class LabFailed(Message):
    """The lab could not be opened."""

    error: str


@dataclass
class LabStatus(Message):
    """Who holds the lab lock now (polled)."""

    holder: LockHolder | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LabStatus)


@dataclass
class ResourcesCounted(Message):
    """How many resources of a kind answered their last poll (the header counts hosts)."""

    kind: str
    up: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ResourcesCounted) and message.kind == self.kind


@dataclass
class HostDetailLoaded(Message):
    """Everything the host detail screen shows."""

    name: str
    facts: dict[str, Any] | None
    processes: list[Any] | None
    error: str | None


@dataclass
class ActionDone(Message):
    """An action the console started ended (record) or was refused before it began (error)."""

    summary: str
    record: ActionRecord | None
    error: str | None


@dataclass
class ActionsLoaded(Message):
    """The journal's actions, oldest first."""

    actions: list[ActionRecord]


@dataclass
class ActionDetailLoaded(Message):
    """One action's diff and journal, for its detail screen."""

    action: ActionRecord
    diff: str


@dataclass
class RollbackPreviewed(Message):
    """What rolling an action back would do, or why it cannot."""

    action_id: int
    preview: RollbackPreview | None
    error: str | None
    changes: list[str] = field(default_factory=list)
    """One line per resource: what the rollback does to it."""


@dataclass
class JournalAppended(Message):
    """A journal event written while the console runs (from any thread)."""

    event: Event


@dataclass
class ProgressLine(Message):
    """A progress line from a step that is running."""

    action_id: int
    ref: str
    line: str


@dataclass
class FilterChanged(Message):
    """The `/` filter's text changed."""

    text: str


# --- resource views (console/screens/resource_view.py, one per kind) --------------------------


@dataclass
class ResourcesLoaded(Message):
    """A kind's resources in the desired state, with what the view shows besides."""

    specs: list[Spec]
    names: dict[str, list[str]]
    """The lab's resources by kind, for the form's fields that name one (a server's host)."""
    last_action: dict[str, tuple[int, str]]
    """name -> (id, summary) of the last succeeded action that touched it (what ctrl+z undoes)."""
    cached: dict[str, dict[str, Any]]
    """name -> the facts the journal recorded when it was last observed."""


@dataclass
class ResourcePolled(Message):
    """One poll of one resource: its state when it was observed, facts, telemetry, log tail."""

    spec: Spec
    state: str | None
    """None when this poll did not observe (state is observed less often than telemetry)."""
    reason: str | None = None
    """Why, when the state is `unreachable`."""
    facts: dict[str, Any] | None = None
    sample: Sample | None = None
    recent: list[Sample] = field(default_factory=list)
    log_tail: list[str] | None = None
    """The last log lines, fetched when it is not serving (why it crashed)."""
    points: list[dict[str, Any]] | None = None
    """Its progress records (a kind with HasProgress), None when not read."""
    report: dict[str, Any] | None = None
    """Its kind's report (HasReport), read when it was observed."""
    summary: dict[str, Any] | None = None
    """Its row as `llmops KIND list` prints it (Summarizes), when it was observed."""
    notes: Text | None = None
    """The presenter's own lines for the detail pane (an adapter's versions)."""


@dataclass
class SpecChecked(Message):
    """What the kind wants the operator to confirm before a spec becomes an action (a new
    host's key), or why it cannot."""

    spec: Spec
    before: Spec | None
    confirm: Confirm | None
    error: str | None


@dataclass
class ResourceProgress(Message):
    """A line from work on one resource (an action's step, a restart, a load test)."""

    name: str
    line: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ResourceProgress) and message.name == self.name


@dataclass
class ResourceOperated(Message):
    """A restart or load test the console started ended: error is None when it worked."""

    verb: str
    name: str
    error: str | None
    seconds: float
    report: str | None = None
    """What a load test measured, one `key: value` a line."""


@dataclass
class LogsLoaded(Message):
    """The log tail of one resource, for the log screen."""

    ref: str
    lines: list[str]
    error: str | None
