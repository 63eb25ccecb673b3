"""Rollback readiness and drills: can the before-state be restored, and how long does it take
(issue 13 item 8). A mixin of the Engine.

Readiness asks, before a resource changes, whether going back to the spec it has now would
work: the kind's own `readiness` (ops/kinds/base.py) plus what this module can check for every
kind from the spec's fields on the host (the old model's weights on the host — a path model's
folder, a hub model's snapshot in the host's HF cache —, an adapter version's folder in the
content-addressed store, an index's named backup where llmops runs Weaviate). The expected
rollback time is the p50 of the journal's past successful rollbacks of that kind; before a
change, only of those that ran the steps this change's plan runs (its rollback repeats them:
a targets-only change restarts nothing, so neither does its rollback, and the restarts of
past rollbacks say nothing of it).

A drill (`llmops drill KIND/NAME`) rehearses: a no-op change (a field that changes nothing
that runs: a host's cost, a server's targets; `NOOP_CHANGES`), its rollback through the
engine's machinery, the kind's checklist, the time. A kind without such a field re-applies
its current spec as a rollback-kind action (reconcile + checklist, nothing changed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.adapter.store import store_host, store_path
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.kinds.weights import is_path_model, model_config
from llmops.ops.transport import TransportError
from llmops.rollback.changes import ActionRefused, Change
from llmops.rollback.kinds import KINDS

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.lab import Lab, Ref
    from llmops.rollback.records import ActionRecord

HISTORY = 500
"""How many of the newest actions the expected rollback time is read from."""


def _bump(value: float) -> float:
    return round(value * 1.01 + 1.0, 3)


NOOP_CHANGES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "host": lambda s: {"cost_per_hour": _bump(s.cost_per_hour or 0.0)},
    "server": lambda s: {"target_ttft_p95_ms": _bump(s.target_ttft_p95_ms)},
}
"""Per kind, a change of fields that alters nothing that runs (no restart: a server restarts
only when its launch hash of argv and env changes; a host is only probed again)."""


@dataclass
class Readiness:
    """Whether a resource could be put back as it is now, and how long that took before."""

    ref: Ref
    blockers: list[str] = field(default_factory=list)
    expected_seconds: float | None = None
    """p50 of past successful rollbacks of this kind (None: none journalled yet); before a
    change, of those that ran the same steps (`steps`)."""
    samples: int = 0
    steps: list[str] | None = None
    """Before a change: the verbs its plan runs on the resource (its rollback runs them again;
    empty: it restarts nothing); None when not planned (a drill's check, a host not reached)."""

    @property
    def ready(self) -> bool:
        return not self.blockers


@dataclass
class DrillReport:
    """What a drill did: readiness first, then the change and its rollback (journal ids),
    the rollback's seconds and checklist."""

    readiness: Readiness
    how: str
    change_action: int | None = None
    rollback_action: int | None = None
    rollback_seconds: float | None = None
    total_seconds: float = 0.0
    checks: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = False
    error: str | None = None


def host_blockers(spec: Spec, hosts: HostPool) -> list[str]:
    """What this module checks on the host for any kind, from the spec's fields."""
    try:
        if isinstance(spec, ServerSpec):
            t = hosts.transport(spec.host)
            if is_path_model(spec.model):
                if t.run(["test", "-f", f"{spec.model}/config.json"], timeout=30).returncode:
                    return [f"{spec.model} is no longer a model folder on {spec.host}"]
            elif not model_config(t, spec.model, spec.args.get("revision")):
                return [f"the weights of {spec.model} are not in {spec.host}'s HF cache: going "
                        "back would download them"]
        if isinstance(spec, AdapterSpec) and spec.server:  # served: its store copy
            host = store_host(spec, hosts)
            facts = hosts.facts(host) if host else None
            if host and facts:
                folder = store_path(facts, spec.sha256)
                if hosts.transport(host).run(["test", "-d", folder], timeout=30).returncode:
                    return [f"adapter version {spec.short_sha()} is not in {host}'s store "
                            f"({folder})"]
        if isinstance(spec, IndexSpec) and spec.backup_id and spec.launch != "attach":
            folder = f"{spec.backup_dir}/{spec.backup_id}"
            if hosts.transport(spec.host).run(["test", "-e", folder], timeout=30).returncode:
                return [f"backup {spec.backup_id} is not in {spec.backup_dir} on {spec.host}"]
    except TransportError as exc:
        return [f"cannot check on the host: {exc}"]
    return []


def step_verbs(record: ActionRecord, kind: str) -> list[str]:
    """The verbs of an action's steps on resources of a kind (sorted, each once)."""
    return sorted({s.verb for s in record.steps
                   if s.phase == "apply" and s.ref.split("/", 1)[0] == kind})


class Drills:
    """Readiness checks and `llmops drill KIND/NAME` (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool
    act: Callable[..., ActionRecord]
    rollback: Callable[[int], ActionRecord]

    def rollback_times(self, kind: str, steps: list[str] | None = None) -> list[float]:
        """Seconds of the journal's succeeded rollbacks that touched a resource of this kind;
        with `steps`, only those whose steps on it had these verbs (none: restarted nothing)."""
        return [
            a.seconds
            for a in self.lab.journal.actions(limit=HISTORY)
            if a.kind == "rollback" and a.status == "succeeded" and a.seconds is not None
            and any(k == kind for k, _n in a.refs)
            and (steps is None or step_verbs(a, kind) == sorted(set(steps)))
        ]

    def readiness(self, kind: str, name: str, before: Spec | None = None,
                  steps: list[str] | None = None) -> Readiness:
        """Could the resource go back to `before` (default: its desired spec now)? Each
        blocker in words, and the rollback time expected for its kind (with `steps`, the
        verbs a change's plan runs: of the past rollbacks that ran them)."""
        spec = before if before is not None else self.lab.read_spec(kind, name)
        times = self.rollback_times(kind, steps)
        found = Readiness((kind, name), [],
                          round(statistics.median(times), 3) if times else None, len(times),
                          None if steps is None else sorted(set(steps)))
        if spec is None:
            return found  # going back means removing it: nothing to restore
        found.blockers += [b.reason for b in KINDS[kind].readiness(spec, self.hosts)]
        found.blockers += host_blockers(spec, self.hosts)
        return found

    def readiness_for(self, changes: list[Change]) -> list[Readiness]:
        """Before an action: for each resource it changes, can it come back as it is now, and
        how long that took for past rollbacks that ran what this change's plan runs."""
        found = []
        for c in changes:
            current = self.lab.read_spec(c.kind, c.name)
            if current is not None:
                found.append(self.readiness(c.kind, c.name,
                                            steps=self.planned_verbs(c, current)))
        return found

    def planned_verbs(self, change: Change, current: Spec) -> list[str] | None:
        """The verbs of the steps the change's plan runs (the kind observes the host, changing
        nothing); None when the host cannot be reached to plan."""
        kind = KINDS[change.kind]
        try:
            observed = kind.observe(change.spec or current, self.hosts)
            return [s.verb for s in kind.plan(change.spec, current, observed)]
        except Exception:  # noqa: BLE001 - advisory: the action's own preflight says what is wrong
            return None

    def drill(self, kind: str, name: str) -> DrillReport:
        """Rehearse a rollback of the resource: a no-op change, its rollback, the checklist,
        timed. Refused (ActionRefused) when it is absent or not ready to go back."""
        spec = self.lab.read_spec(kind, name)
        if spec is None:
            raise ActionRefused(f"there is no {kind} named {name} (see `llmops {kind} list`)")
        ready = self.readiness(kind, name)
        if not ready.ready:
            raise ActionRefused(f"{kind}/{name} could not be rolled back now: "
                                + "; ".join(ready.blockers))
        started = time.monotonic()
        noop = NOOP_CHANGES.get(kind)
        if noop is not None:
            fields = noop(spec)
            variant = spec.model_copy(update=fields)
            variant = type(spec).model_validate(variant.model_dump())
            report = DrillReport(ready, "no-op change of " + ", ".join(fields) + ", rolled back")
            change = self.act([Change(kind, name, variant)],
                              f"drill: {kind} {name} no-op change ({', '.join(fields)})")
            report.change_action = change.id
            if not change.ok:
                report.error = f"the no-op change failed: {change.error or change.status}"
                report.total_seconds = round(time.monotonic() - started, 3)
                return report
            back = self.rollback(change.id)
        else:
            report = DrillReport(ready, "re-applied as a rollback (the kind has no no-op field)")
            back = self.act([Change(kind, name, spec)], f"drill: {kind} {name} re-applied",
                            is_rollback=True)
        report.rollback_action = back.id
        report.rollback_seconds = back.seconds
        report.checks = [{"ref": c.ref, "name": c.name, "ok": c.ok, "detail": c.detail}
                         for c in back.checks]
        report.ok = back.ok and self.lab.read_spec(kind, name) == spec
        if not back.ok:
            report.error = back.error or f"the rollback ended {back.display_status}"
        report.total_seconds = round(time.monotonic() - started, 3)
        return report
