"""The action engine: validate -> journal (write-ahead) -> commit -> reconcile -> validate,
reverting on any failure; rollback (rollback/undo.py) is just another action aimed at an
older commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Check, Context, RollbackChecks, Spec, SpecError
from llmops.ops.validate import find_secrets
from llmops.rollback.alerts import Alerts
from llmops.rollback.benches import Benches
from llmops.rollback.changes import ActionRefused, Change, who
from llmops.rollback.drill import Drills
from llmops.rollback.evals import Evals
from llmops.rollback.faultpoints import fault_point
from llmops.rollback.gateways import Gateways
from llmops.rollback.kinds import KINDS, admit_dependencies
from llmops.rollback.lab import Lab, Ref
from llmops.rollback.leftovers import Leftovers
from llmops.rollback.lock import current_command
from llmops.rollback.operate import Operate
from llmops.rollback.pending import PendingReverts
from llmops.rollback.policy import check_policy
from llmops.rollback.records import ActionRecord
from llmops.rollback.undo import RollbackPreview, Undo

__all__ = ["ActionRefused", "Change", "Engine", "RollbackPreview"]


class Engine(Undo, Leftovers, Operate, Benches, Evals, Alerts, Drills, Gateways):
    """Runs actions on one lab. Thread-safe enough for one console plus CLI calls: the lab
    lock serialises actions across processes and threads."""

    def __init__(self, lab: Lab, *, lock_wait: float = 5.0) -> None:
        self.lab = lab
        self.lock_wait = lock_wait
        self._fresh_facts: dict[Ref, dict[str, Any]] = {}
        self.progress_listeners: list[Callable[[int, str, str], None]] = []
        """Called with (action id, "kind/name", line) while a step runs (log lines, downloads)."""
        self.hosts = HostPool(
            self._host_spec,
            lab.known_hosts,
            facts=lambda name: lab.journal.observed("host", name),
            desired=lambda kind, name: lab.read_spec(kind, name),
            journalled=lambda ref: lab.journal.step_facts(ref),
        )
        self.pending = PendingReverts(lab.journal, desired=lab.read_spec)
        self.records = True
        """Whether observations are written to the facts cache (off: a read-only console/CLI)."""

    def close(self) -> None:
        self.hosts.close()

    def subscribe_progress(self, listener: Callable[[int, str, str], None]) -> Callable[[], None]:
        """Receive (action id, "kind/name", line) while steps run; returns the unsubscriber."""
        self.progress_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self.progress_listeners:
                self.progress_listeners.remove(listener)

        return unsubscribe

    def _host_spec(self, name: str) -> Any:
        return self.lab.read_spec("host", name)

    def context(self, overrides: list[Change] | None = None) -> Context:
        desired: dict[Ref, Spec] = dict(self.lab.specs(None))
        for ch in overrides or []:
            if ch.spec is None:
                desired.pop(ch.ref, None)
            else:
                desired[ch.ref] = ch.spec
        return Context(desired, lambda kind, name: self.lab.journal.observed(kind, name))

    # -- admission -----------------------------------------------------------------------
    def admit(self, changes: list[Change], *, is_rollback: bool = False) -> None:
        """Every check that needs no host: raises SpecError before anything is written."""
        if not changes:
            raise ActionRefused("nothing to do: no resource changes")
        context = self.context(changes)
        check_policy(self.lab, changes, context)
        for ch in changes:
            kind = KINDS[ch.kind]
            if ch.spec is None:
                if (
                    self.lab.read_spec(ch.kind, ch.name, self.lab.head()) is None
                    and not is_rollback
                ):
                    raise SpecError(
                        "name",
                        f"there is no {ch.kind} named {ch.name}",
                        f"see `llmops {ch.kind} list`",
                    )
                admit_dependencies(kind, ch.ref, ch.spec, context)
                kind.admit_removal(ch.name, context)
                self.admit_pending_removal(ch.ref)
            else:
                for field, what in find_secrets(ch.spec.to_toml_dict()):
                    raise SpecError(
                        field,
                        f"looks like {what}; secrets never go into the lab's git",
                        "keep it in the host's environment or a file on the host",
                    )
                admit_dependencies(kind, ch.ref, ch.spec, context)
                kind.admit(ch.spec, context)

    # -- actions -------------------------------------------------------------------------
    def act(
        self,
        changes: list[Change],
        summary: str,
        *,
        trust: Mapping[str, str] | None = None,
        rollback_of: int | None = None,
        is_rollback: bool = False,
    ) -> ActionRecord:
        """Run one action end to end; returns its journal record (succeeded or reverted).

        A rollback keeps its result when a check fails (it reports it): going back to the
        state that was just left would not help the operator."""
        is_rollback = is_rollback or rollback_of is not None
        self.admit(changes, is_rollback=is_rollback)
        if is_rollback:
            self.refuse_empty_rollback(changes)
        if (
            not is_rollback
            and rollback_of is None
            and all(self.lab.read_spec(c.kind, c.name, self.lab.head()) == c.spec for c in changes)
        ):
            raise ActionRefused(
                "nothing to change: "
                + ", ".join(f"{c.kind} {c.name}" for c in changes)
                + " already as asked"
            )
        with self.lab.lock.hold(current_command(), wait=self.lock_wait):
            # a change that leaves a follower's spec as the lab holds it (the rollback of an
            # action that took it along lists it) is a follower too: not preflighted
            moved = [c for c in changes if self.lab.read_spec(c.kind, c.name) != c.spec]
            asked = {c.ref for c in changes} - {
                c.ref for c in self.with_followers(moved)[len(moved):]}
            changes = self.with_followers(changes)  # e.g. a gateway routing to a moved server
            self.admit(changes, is_rollback=is_rollback)  # again: another actor may have acted
            for host, fingerprint in (trust or {}).items():
                self.hosts.trust(host, fingerprint)
            for ch in changes:  # not a follower: its spec is as it was when it passed, and
                # what it reads of its dependency is set up by the dependency's steps (first)
                if ch.spec is not None and ch.ref in asked:
                    KINDS[ch.kind].preflight(ch.spec, self.hosts)
            self.finish_reverts(self.hosts_of(changes), skip={c.ref for c in changes})
            return self._run(changes, summary, rollback_of, is_rollback)

    def _run(
        self, changes: list[Change], summary: str, rollback_of: int | None, is_rollback: bool
    ) -> ActionRecord:
        journal = self.lab.journal
        started = time.monotonic()
        action_id = self.lab.next_action_id()  # after the highest in git too
        before = self.lab.head()
        journal.append(
            action_id,
            "started",
            {
                "kind": "rollback" if is_rollback else "apply",
                "summary": summary,
                "who": who(),
                "refs": [list(c.ref) for c in changes],
                "before_commit": before,
                "rollback_of": rollback_of,
                "specs": {
                    f"{c.kind}/{c.name}": c.spec.to_toml_dict() if c.spec else None for c in changes
                },
            },
        )
        fault_point("after-started")
        paths = [self.lab.write_spec(c.kind, c.name, c.spec) for c in changes]
        fault_point("after-write")
        commit = self.lab.commit(f"action {action_id}: {summary}", paths)
        fault_point("after-commit")
        journal.append(action_id, "committed", {"commit": commit})
        fault_point("after-committed")
        current = {c.ref: self.lab.read_spec(c.kind, c.name, before) for c in changes}
        running = {ref: self.running_spec(ref, spec) for ref, spec in current.items()}
        try:
            self._fresh_facts = {}
            self._reconcile_all(action_id, changes, current)
            fault_point("before-checks")
            checks = self._validate_all(action_id, changes, running, rollback=is_rollback)
            self._record_facts()
            if not is_rollback and not all(c.ok for c in checks):
                failed = ", ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
                raise RuntimeError(f"validation failed after the change: {failed}")
        except Exception as exc:  # noqa: BLE001 - any failure must revert
            return self._revert(action_id, changes, current, running, before, exc, started)
        fault_point("before-succeeded")
        journal.append(
            action_id,
            "succeeded",
            {"after_commit": commit, "seconds": round(time.monotonic() - started, 3)},
        )
        record = journal.action(action_id)
        assert record is not None
        return record

    def _reconcile_all(
        self,
        action_id: int,
        changes: list[Change],
        current: Mapping[Ref, Spec | None],
        *,
        phase: str = "apply",
    ) -> dict[Ref, str]:
        """Each resource in order; the apply stops at the first failure (raised), the revert
        tries every resource and returns the errors by resource."""
        removals = sorted(
            (c for c in changes if c.spec is None), key=lambda c: KINDS[c.kind].order, reverse=True
        )
        updates = sorted(
            (c for c in changes if c.spec is not None), key=lambda c: KINDS[c.kind].order
        )
        errors: dict[Ref, str] = {}
        for ch in removals + updates:
            try:
                self._reconcile(action_id, ch, current.get(ch.ref), phase)
            except Exception as exc:
                if phase != "revert":
                    raise
                errors[ch.ref] = str(exc)
        return errors

    def running_spec(self, ref: Ref, current: Spec | None, phase: str = "apply") -> Spec | None:
        """What may run now: a revert that could not finish knows better than git does, except
        in a revert, where the spec just applied is the better guess."""
        pending = self.pending.get(ref)
        if pending is not None and (phase == "apply" or current is None):
            return pending.spec
        return current

    def _reconcile(self, action_id: int, ch: Change, current: Spec | None, phase: str) -> None:
        kind = KINDS[ch.kind]
        journal = self.lab.journal
        current = self.running_spec(ch.ref, current, phase)
        where = ch.spec if ch.spec is not None else current
        if where is None:
            return
        observed = kind.observe(where, self.hosts)
        for step in kind.plan(ch.spec, current, observed):
            t0 = time.monotonic()
            entry = {
                "ref": f"{ch.kind}/{ch.name}",
                "verb": step.verb,
                "detail": step.detail,
                "phase": phase,
            }

            def progress(line: str, _entry: dict[str, Any] = entry) -> None:
                for listener in self.progress_listeners:
                    listener(action_id, _entry["ref"], line)

            try:
                facts = kind.apply(
                    step, ch.spec if ch.spec is not None else current, self.hosts, progress
                )
            except Exception as exc:
                journal.append(
                    action_id,
                    "step",
                    {
                        **entry,
                        "ok": False,
                        "error": str(exc),
                        "seconds": round(time.monotonic() - t0, 3),
                    },
                )
                raise
            done = {**entry, "ok": True, "seconds": round(time.monotonic() - t0, 3)}
            journal.append(action_id, "step", {**done, "facts": facts} if facts else done)
            fault_point("step", entry["ref"])
            if facts:  # every step's facts, the later ones winning (a load's seconds stay)
                self._fresh_facts.setdefault(ch.ref, {}).update(facts)
        self.pending.clear(ch.ref)  # reconciled: whatever was left is what is desired now

    def _record_facts(self) -> None:
        """Facts are recorded after the checklist, so it can compare against the last ones seen
        (a removed resource keeps its last facts for the rollback that brings it back)."""
        for (kind, name), facts in self._fresh_facts.items():
            self.lab.journal.record_observed(kind, name, facts)
        self._fresh_facts = {}

    def _validate_all(
        self,
        action_id: int,
        changes: list[Change],
        current: Mapping[Ref, Spec | None],
        phase: str = "apply",
        *,
        rollback: bool = False,
    ) -> list[Check]:
        checks: list[Check] = []
        for ch in changes:
            kind = KINDS[ch.kind]
            before_spec = current.get(ch.ref)
            t0 = time.monotonic()
            try:
                if ch.spec is not None:
                    found = kind.validate(ch.spec, self.hosts)
                    if rollback and isinstance(kind, RollbackChecks):
                        found = [*found, *kind.rollback_checks(ch.spec, self.hosts)]
                elif before_spec is not None:
                    found = kind.validate_absent(before_spec, self.hosts)
                else:
                    found = []
            except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
                found = [
                    Check(
                        "checklist",
                        False,
                        f"the checklist itself failed: {exc}",
                        time.monotonic() - t0,
                    )
                ]
            for check in found:
                self.lab.journal.append(
                    action_id,
                    "check",
                    {
                        "ref": f"{ch.kind}/{ch.name}",
                        "name": check.name,
                        "ok": check.ok,
                        "detail": check.detail,
                        "seconds": round(check.seconds, 3),
                        "phase": phase,
                    },
                )
            checks.extend(found)
        return checks

    def _revert(
        self,
        action_id: int,
        changes: list[Change],
        current: Mapping[Ref, Spec | None],
        running: Mapping[Ref, Spec | None],
        before: str,
        exc: Exception,
        started: float,
    ) -> ActionRecord:
        """Back to the before-commit, then its checklist: "failed, reverted" only when the
        resources are verified as they were. A resource whose revert could not finish (its host
        went away) is recorded as pending, with the spec that may still run there."""
        journal = self.lab.journal
        back = [Change(c.kind, c.name, current.get(c.ref)) for c in changes]
        paths = [self.lab.write_spec(c.kind, c.name, c.spec) for c in back]
        revert_commit = self.lab.commit(f"action {action_id} reverted: {exc}"[:200], paths)
        fault_point("revert-after-commit")
        forward = {c.ref: c.spec for c in changes}
        self._fresh_facts = {}
        errors = self._reconcile_all(action_id, back, forward, phase="revert")
        for ref, error in errors.items():
            left = forward.get(ref) or running.get(ref)
            if left is not None:
                self.pending.record(action_id, ref, left, error)
        reverted = [c for c in back if c.ref not in errors]
        checks = self._validate_all(action_id, reverted, forward, phase="revert")
        if not errors:
            self._record_facts()
        fault_point("before-failed")
        journal.append(
            action_id,
            "failed",
            {
                "error": str(exc),
                "reverted": not errors,
                "revert_error": revert_message(errors),
                "revert_verified": all(c.ok for c in checks),
                "pending": [f"{kind}/{name}" for kind, name in errors],
                "after_commit": revert_commit,
                "before_commit": before,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        record = journal.action(action_id)
        assert record is not None
        return record


def revert_message(errors: Mapping[Ref, str]) -> str | None:
    """The revert's error as the operator reads it: one resource's as it is, several named."""
    if len(errors) <= 1:
        return next(iter(errors.values()), None)
    return "; ".join(f"{kind}/{name}: {error}" for (kind, name), error in errors.items())
