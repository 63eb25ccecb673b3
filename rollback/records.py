"""What the journal's events are and what an action looks like folded from them: typed rows
for steps and checks, the action record, and the fold (pure: no SQLite here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Event:
    seq: int
    action_id: int
    at: str
    event: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class JournalRow:
    """A row read back from an event's data: unknown keys are ignored, missing ones default
    (old journals and live events in progress read the same way)."""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Self:
        known: dict[str, Any] = getattr(cls, "__dataclass_fields__", {})
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StepRow(JournalRow):
    """One plan step as journalled: which resource, what ran, in which phase, how it ended."""

    ref: str = ""
    verb: str = ""
    detail: str = ""
    phase: str = "apply"
    ok: bool | None = None
    """None while the step runs (a live view); True or False once it ended."""
    seconds: float = 0.0
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """What the step found worth keeping (a pid, a load's seconds, a weights path)."""


@dataclass(frozen=True)
class CheckRow(JournalRow):
    """One checklist item as journalled after an action, a revert or a rollback."""

    ref: str = ""
    name: str = ""
    ok: bool = False
    detail: str = ""
    seconds: float = 0.0
    phase: str = "apply"


@dataclass
class ActionRecord:
    """One action as folded from its events; what History shows."""

    id: int
    kind: str
    summary: str
    who: str
    started_at: str
    status: str = "running"
    finished_at: str | None = None
    before_commit: str = ""
    commit: str | None = None
    after_commit: str | None = None
    refs: list[tuple[str, str]] = field(default_factory=list)
    rollback_of: int | None = None
    rolled_back_by: int | None = None
    error: str | None = None
    revert_error: str | None = None
    seconds: float | None = None
    steps: list[StepRow] = field(default_factory=list)
    checks: list[CheckRow] = field(default_factory=list)

    @property
    def checks_passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def ok(self) -> bool:
        """It did what was asked: succeeded, and every check of its checklist passed."""
        return self.status == "succeeded" and self.checks_passed

    @property
    def is_operation(self) -> bool:
        """A restart (rollback/operate.py): journalled like an action, but it changed no
        desired state, so there is nothing to roll back."""
        return self.kind not in ("apply", "rollback")

    @property
    def display_status(self) -> str:
        if self.status == "succeeded" and self.rolled_back_by is not None:
            return "rolled back"
        if self.status == "succeeded" and not self.checks_passed:
            return "succeeded, checks failed"
        return self.status


def fold_all(events: list[Event]) -> list[ActionRecord]:
    """Records of the actions these events belong to, oldest first."""
    records: dict[int, ActionRecord] = {}
    for ev in events:
        fold(records, ev)
    for rec in records.values():
        if rec.rollback_of is not None and rec.status == "succeeded":
            target = records.get(rec.rollback_of)
            if target is not None:
                target.rolled_back_by = rec.id
    return list(records.values())


def fold(records: dict[int, ActionRecord], ev: Event) -> None:
    """Apply one event to the record of its action."""
    d = ev.data
    if ev.event == "started":
        records[ev.action_id] = ActionRecord(
            id=ev.action_id,
            kind=d.get("kind", "apply"),
            summary=d.get("summary", ""),
            who=d.get("who", ""),
            started_at=ev.at,
            before_commit=d.get("before_commit", ""),
            refs=[(k, n) for k, n in d.get("refs", [])],
            rollback_of=d.get("rollback_of"),
        )
        return
    rec = records.get(ev.action_id)
    if rec is None:
        return
    if ev.event == "committed":
        rec.commit = d.get("commit")
    elif ev.event == "step":
        rec.steps.append(StepRow.of(d))
    elif ev.event == "check":
        rec.checks.append(CheckRow.of(d))
    elif ev.event in ("succeeded", "failed", "interrupted"):
        rec.status = {"failed": failed_status(d)}.get(ev.event, ev.event)
        rec.finished_at = ev.at
        rec.after_commit = d.get("after_commit", rec.after_commit)
        rec.seconds = d.get("seconds", rec.seconds)
        rec.error = d.get("error", rec.error)
        rec.revert_error = d.get("revert_error")


def failed_status(d: dict[str, Any]) -> str:
    """A failed action's status: reverted only when the revert's checklist passed too."""
    if not d.get("reverted"):
        return "failed"
    return "failed, revert unverified" if d.get("revert_verified") is False else "failed, reverted"
