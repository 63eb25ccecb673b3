"""The read model every list and view shares, whatever the kind: each resource's row from its
kind's `Summarizes` capability (in ops), with its state observed now and its latest telemetry
sample. `llmops KIND list` prints these rows; the console's views read the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Spec, Summarizes
from llmops.ops.transport import TransportError
from llmops.rollback.kinds import KINDS, kind_of
from llmops.rollback.pending import PENDING_STATE
from llmops.rollback.telemetry import TelemetryStore, ref_of

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.engine import Engine


def summarizer(kind: str) -> Summarizes:
    found = KINDS[kind]
    if not isinstance(found, Summarizes):
        raise TypeError(f"a {kind} has no summary")
    return found


def status(hosts: HostPool, spec: Spec, answering: bool | None = None) -> str:
    """The resource observed now, in a word (`answering`: did it answer its last poll)."""
    return summarizer(kind_of(spec).name).status(spec, hosts, answering)


def summaries(engine: Engine, kind: str, *, observe: bool = True) -> list[dict[str, Any]]:
    """Every resource of a kind as its row: state observed now (unless `observe` is off; an
    unreachable host says so in its own row) and the latest telemetry."""
    summary = summarizer(kind)
    store = TelemetryStore(engine.lab.journal.db, engine.lab.journal.lock)
    rows = []
    pending = {p.ref: p for p in engine.pending.all() if p.kind == kind}
    specs = engine.lab.specs()
    for (spec_kind, name), spec in specs.items():
        if spec_kind != kind:
            continue
        state = "?"
        if (kind, name) in pending:
            state = PENDING_STATE  # what a failed revert left there: not known until reached
        elif observe:
            try:
                state = summary.status(spec, engine.hosts)
            except TransportError as exc:
                state = f"unreachable: {exc}"[:80]
        rows.append(summary.summary(spec, state, store.latest(ref_of(kind, name))))
    gone = [p for ref, p in pending.items() if ref not in specs]  # no spec, maybe still running
    return rows + [summary.summary(p.spec, PENDING_STATE, None) for p in gone]
