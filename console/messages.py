"""Every message the console's workers and widgets post: small dataclasses, typed payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from llmops.ops.kinds.host.spec import HostSpec
    from llmops.ops.kinds.server.spec import ServerSpec
    from llmops.rollback.engine import Engine, RollbackPreview
    from llmops.rollback.journal import ActionRecord, Event
    from llmops.rollback.lab import Lab
    from llmops.rollback.lock import LockHolder
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
class HostsSummary(Message):
    """How many hosts answered their last probe, for the header."""

    up: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostsSummary)


@dataclass
class HostsLoaded(Message):
    """The hosts in the lab's desired state, with the last facts the journal cached."""

    specs: list[HostSpec]
    cached: dict[str, dict[str, Any]]


@dataclass
class HostProbed(Message):
    """One probe finished: facts on success, the reason on failure."""

    name: str
    facts: dict[str, Any] | None
    error: str | None
    seconds: float


@dataclass
class HostDetailLoaded(Message):
    """Everything the host detail screen shows."""

    name: str
    facts: dict[str, Any] | None
    processes: list[Any] | None
    error: str | None


@dataclass
class FingerprintFetched(Message):
    """The host key a new remote host presents, for the operator to confirm."""

    spec: HostSpec
    key_type: str | None
    fingerprint: str | None
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


# --- Servers view ---------------------------------------------------------------------------


@dataclass
class ServersLoaded(Message):
    """The servers in the desired state, the host names, and the last action on each server."""

    specs: list[ServerSpec]
    hosts: list[str]
    last_action: dict[str, tuple[int, str]]
    """server name -> (id, summary) of the last succeeded action that touched it."""


@dataclass
class ServerPolled(Message):
    """One poll of one server: a telemetry sample, and its observed state when it was asked."""

    spec: ServerSpec
    sample: Sample
    recent: list[Sample]
    state: str | None
    """None when this poll did not observe (state is observed less often than telemetry)."""
    log_tail: list[str] | None = None
    """The last log lines, fetched when the server is not up (why it crashed)."""


@dataclass
class ServerLogsLoaded(Message):
    """The log tail of one server, for the log screen."""

    name: str
    lines: list[str]
    error: str | None


@dataclass
class ServerProgress(Message):
    """A line from a step that runs on one server (an action or a restart)."""

    name: str
    line: str


@dataclass
class ServerRestarted(Message):
    """A restart the console started ended: error is None when it worked."""

    name: str
    error: str | None
    seconds: float

