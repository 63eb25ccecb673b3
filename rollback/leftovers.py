"""What llmops started on a host stays visible until it is gone: reverts left pending by a
lost host are finished when it answers again, and processes no spec claims are shown.

A mixin of the Engine (it needs the engine's `_run`): the next action that reaches a host,
and `llmops plan`, finish the pending reverts there, each as its own action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Spec, SpecError
from llmops.ops.procs import ProcInfo, list_procs
from llmops.ops.transport import TransportError
from llmops.rollback.changes import Change
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab, Ref
from llmops.rollback.lock import LabBusy, current_command
from llmops.rollback.pending import PENDING_STATE, PendingReverts

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.records import ActionRecord

REACH_TIMEOUT = 15.0


class Leftovers:
    """Pending reverts and unclaimed processes (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool
    pending: PendingReverts
    lock_wait: float
    progress_listeners: list[Callable[[int, str, str], None]]
    _run: Callable[..., ActionRecord]

    def hosts_of(self, changes: Iterable[Change]) -> set[str]:
        """The hosts an action reaches: where its resources run, as asked, as committed, or as
        a pending revert left them."""
        found = set()
        for ch in changes:
            pending = self.pending.get(ch.ref)
            for spec in (ch.spec, self.lab.read_spec(ch.kind, ch.name), pending and pending.spec):
                host = KINDS[ch.kind].host_of(spec) if isinstance(spec, Spec) else None
                if host:
                    found.add(host)
        return found

    def admit_pending_removal(self, ref: Ref) -> None:
        """A host (or anything else) is not removed while a pending revert stands on it."""
        for p in self.pending.all():
            if ref in KINDS[p.kind].depends_on(p.spec).values():
                raise SpecError(
                    ref[0],
                    f"{ref[1]} still has {p.kind} {p.name}, {PENDING_STATE} since action"
                    f" {p.action_id}",
                    "bring the host back; `llmops plan` then finishes the revert",
                )

    def answers(self, host: str) -> bool:
        """Whether a host can be reached now (a command runs there)."""
        try:
            self.hosts.transport(host).run(["true"], timeout=REACH_TIMEOUT)
        except TransportError:
            return False
        return True

    def finish_reverts(
        self, hosts: set[str] | None = None, skip: set[Ref] | None = None
    ) -> list[ActionRecord]:
        """Pending reverts on these hosts (None: all), reconciled now to what git wants where
        the host answers; the caller holds the lab lock. Each is its own action, journalled as
        a rollback of the action whose revert it finishes; unreachable ones stay pending."""
        done = []
        reachable: dict[str, bool] = {}
        for p in self.pending.all():
            host = p.host
            if p.ref in (skip or set()) or (hosts is not None and host not in hosts):
                continue
            if host is not None and not reachable.setdefault(host, self.answers(host)):
                continue
            summary = f"finish the revert of action {p.action_id}: {p.kind} {p.name}"
            for listener in self.progress_listeners:
                listener(p.action_id, f"{p.kind}/{p.name}", summary)
            desired = self.lab.read_spec(p.kind, p.name)
            done.append(self._run([Change(p.kind, p.name, desired)], summary, p.action_id, True))
        return done

    def settle(self) -> list[ActionRecord]:
        """Finish every pending revert whose host answers (for `plan` and the console), under
        the lab lock; nothing while someone else holds it (the next call does it)."""
        if not self.pending.all():
            return []
        try:
            with self.lab.lock.hold(current_command(), wait=self.lock_wait):
                return self.finish_reverts()
        except LabBusy:
            return []

    def host_processes(self, host: str) -> list[tuple[ProcInfo, str | None]]:
        """llmops's processes on a host, each with what claims it: "server/s9", a pending
        revert's resource, or None (started by llmops, claimed by no spec). Reaches the host."""
        claims: list[tuple[str, str, Spec]] = [
            (kind, f"{kind}/{name}", spec)
            for (kind, name), spec in self.lab.specs().items()
            if host in KINDS[kind].hosts_of(spec)
        ]
        claims += [
            (p.kind, f"{p.kind}/{p.name} ({PENDING_STATE})", p.spec)
            for p in self.pending.all()
            if p.host == host
        ]

        def owner(proc: ProcInfo) -> str | None:
            return next((w for k, w, s in claims if KINDS[k].owns_process(s, proc.name)), None)

        return [(proc, owner(proc)) for proc in list_procs(self.hosts.transport(host))]

    def unclaimed(self, host: str) -> list[ProcInfo]:
        """Running processes llmops started on the host that no desired spec claims."""
        return [p for p, who in self.host_processes(host) if who is None and p.running]

    def leftover_rows(self, finished: Iterable[ActionRecord] = ()) -> list[dict[str, Any]]:
        """`llmops plan`'s rows for what no desired spec shows: the reverts `settle` just
        finished, each one still pending, and each running process llmops started that nothing
        claims, on the hosts that answer."""
        pending = self.pending.all()
        rows: list[dict[str, Any]] = [
            {
                "resource": "/".join(ref),
                "hand_edited": False,
                "steps": [],
                "state": "revert finished" if a.status == "succeeded" else f"revert {a.status}",
                "note": f"action {a.id}, {a.summary}: {a.display_status}, "
                + ", ".join(f"{s.verb} {'ok' if s.ok else 'FAILED'}" for s in a.steps),
            }
            for a in finished
            for ref in a.refs
        ]
        rows += [
            {
                "resource": f"{p.kind}/{p.name}",
                "hand_edited": False,
                "steps": [],
                "state": PENDING_STATE,
                "note": p.describe(),
            }
            for p in pending
        ]
        hosts = {h for (k, _n), spec in self.lab.specs().items() for h in KINDS[k].hosts_of(spec)}
        hosts |= {p.host for p in pending if p.host}
        for host in sorted(h for h in hosts if h):
            try:
                procs = self.unclaimed(host)
            except TransportError:
                continue
            rows += [
                {
                    "resource": f"process {host}/{p.name}",
                    "hand_edited": False,
                    "steps": [],
                    "state": "unclaimed",
                    "note": f"pid {p.pid}, started by llmops at"
                    f" {p.started_at}, claimed by no spec: {' '.join(p.argv)[:120]}",
                }
                for p in procs
            ]
        return rows
