"""Going back: rollback of an action, of a resource to its last good state, and the
recovery of actions a dead console left half done. Each is just another action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Spec
from llmops.rollback.changes import ActionRefused, Change
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab, Ref, spec_path
from llmops.rollback.lock import current_command
from llmops.rollback.pending import PendingReverts
from llmops.rollback.records import ActionRecord

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class RollbackPreview:
    """What a rollback of an action will do, for the confirm dialog."""

    action: ActionRecord
    changes: list[Change]
    diff: str
    expected_seconds: float
    blockers: list[str] = field(default_factory=list)
    later_actions: list[int] = field(default_factory=list)
    """Succeeded actions after this one that touched the same resources: they are undone too."""
    current: dict[Ref, Spec | None] = field(default_factory=dict)
    """Each touched resource's desired spec now, beside `changes` (what it goes back to)."""


class Undo:
    """The rollback half of the Engine (a mixin: it needs the engine's `act`)."""

    lab: Lab
    hosts: HostPool
    pending: PendingReverts
    act: Callable[..., ActionRecord]

    def preview_rollback(self, action_id: int) -> RollbackPreview:
        """What rolling back `action_id` would change, how long it should take, what blocks it."""
        record = self.lab.journal.action(action_id)
        if record is None:
            raise ActionRefused(f"there is no action {action_id} (see `llmops history`)")
        if record.status == "running":
            raise ActionRefused(f"action {action_id} is still running")
        if record.is_operation:
            raise ActionRefused(
                f"action {action_id} was a {record.kind}: it changed no desired state, so there"
                " is nothing to roll back"
            )
        if record.status == "failed, reverted":
            raise ActionRefused(
                f"action {action_id} failed and was already reverted: nothing to undo"
            )
        changes = [
            Change(k, n, self.lab.read_spec(k, n, record.before_commit)) for k, n in record.refs
        ]
        self.refuse_empty_rollback(changes)
        head = self.lab.head()
        paths = [spec_path(k, n) for k, n in record.refs]
        diff = self.lab.diff(head, record.before_commit, paths)
        blockers = []
        for ch in changes:
            blockers += [b.reason for b in KINDS[ch.kind].readiness(ch.spec, self.hosts)]
        later = [
            a.id
            for a in self.lab.journal.touching(record.refs, from_id=record.id)
            if a.id > record.id
            and a.status == "succeeded"
            and set(a.refs) & set(record.refs)
            and not a.is_operation
            and a.rollback_of != record.id  # e.g. the finishing of its pending revert
        ]
        current = {(k, n): self.lab.read_spec(k, n) for k, n in record.refs}
        return RollbackPreview(
            record, changes, diff, self.expected_seconds(record), blockers, later, current
        )

    def expected_seconds(self, record: ActionRecord) -> float:
        """A guess from the journal: how long past rollbacks of this action took; else the
        work the undo repeats. Undoing a creation only stops it (5 s, however long its install
        and start took); undoing a removal starts the resource again (the action that last
        made it as it was); undoing a change is about the change itself."""
        touching = self.lab.journal.touching(record.refs)
        undone = [a.seconds for a in touching
                  if a.rollback_of == record.id and a.seconds is not None]
        if undone:
            return max(undone)
        before = [self.lab.read_spec(k, n, record.before_commit) for k, n in record.refs]
        after = [self.lab.read_spec(k, n, record.after_commit) for k, n in record.refs
                 ] if record.after_commit else [True]
        if all(b is None for b in before):  # created only: the undo stops it
            return 5.0
        if all(a is None for a in after):  # removed only: the undo starts it again
            made = [a.seconds for a in touching
                    if a.id < record.id and a.status == "succeeded" and a.seconds is not None]
            return made[-1] if made else 5.0
        return record.seconds if record.seconds is not None else 5.0

    def rollback(self, action_id: int) -> ActionRecord:
        preview = self.preview_rollback(action_id)
        if preview.blockers:
            raise ActionRefused("cannot roll back now: " + "; ".join(preview.blockers))
        return self.act(preview.changes, f"rollback of action {action_id}", rollback_of=action_id)

    def last_good(self, kind: str, name: str) -> tuple[ActionRecord, Spec | None]:
        """The last action that touched the resource, succeeded and passed every check."""
        for record in reversed(self.lab.journal.touching([(kind, name)])):
            if (
                (kind, name) in record.refs
                and record.ok
                and record.checks
                and record.after_commit
            ):
                return record, self.lab.read_spec(kind, name, record.after_commit)
        raise ActionRefused(f"no action on {kind}/{name} succeeded with every check passing")

    def rollback_last_good(self, kind: str, name: str) -> ActionRecord:
        record, spec = self.last_good(kind, name)
        return self.act(
            [Change(kind, name, spec)],
            f"{kind} {name} back to its last good state (action {record.id})",
            is_rollback=True,
        )

    def refuse_empty_rollback(self, changes: list[Change]) -> None:
        """A rollback whose reconcile would do nothing says so instead of "succeeded": each
        resource is absent in git, was absent before, and no revert of it is pending."""
        idle = [
            c
            for c in changes
            if c.spec is None
            and self.lab.read_spec(c.kind, c.name) is None
            and self.pending.get(c.ref) is None
        ]
        if changes and len(idle) == len(changes):
            names = ", ".join(f"{c.kind} {c.name}" for c in idle)
            raise ActionRefused(
                f"nothing to roll back: {names} {'is' if len(idle) == 1 else 'are'} absent now,"
                " as before, and llmops has no revert of it pending on a host"
            )

    # -- start-up ------------------------------------------------------------------------
    def recover(self) -> list[int]:
        """Mark actions left `running` by a dead console or CLI call as interrupted; returns
        their ids. The note names the process that died, as its lock line recorded it."""
        if self.lab.lock.holder() is not None:
            return []
        dead = self.lab.lock.last_holder()
        who = f"llmops (pid {dead.pid}, `{dead.command}`)" if dead else "the llmops process"
        note = f"{who} died mid-action"
        found = []
        with self.lab.lock.hold(current_command(), wait=0):
            for record in self.lab.journal.unfinished():
                if record.status == "running":
                    if record.commit is None:  # died before committing: drop its half-written files
                        for kind, name in record.refs:
                            self.lab.write_spec(
                                kind, name, self.lab.read_spec(kind, name, self.lab.head())
                            )
                    self.lab.journal.append(
                        record.id,
                        "interrupted",
                        {"note": note, "error": note},
                    )
                    self._left_by_revert(record)
                    found.append(record.id)
        return found

    def _left_by_revert(self, record: ActionRecord) -> None:
        """Killed inside its revert: git is back (the revert commit), but what the failed
        change started may still run. Each resource git no longer wants as the change had it
        becomes a pending revert, so `rollback N`, the next action on its host or `plan`
        reconciles it (stops what was started) instead of "nothing to roll back"."""
        if record.commit is None:
            return
        for kind, name in record.refs:
            forward = self.lab.read_spec(kind, name, record.commit)
            if (
                forward is not None
                and forward != self.lab.read_spec(kind, name)
                and self.pending.get((kind, name)) is None
            ):
                self.pending.record(
                    record.id, (kind, name), forward, "llmops died during the revert"
                )
