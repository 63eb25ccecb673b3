"""Telemetry of every kind, polled and kept alike: the poller asks a resource's kind for a
sampler (the HasTelemetry capability, in ops: what to sample and how) and appends each sample
to `telemetry` in `lab.db`, keyed by the resource's ref ("server/qwen", "run/lora-7"), expired
by age and capped per ref. The table is a cache beside the journal, never part of it."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import sqlite_utils

from llmops.ops.kinds.base import HasTelemetry, Sample, Sampler, Spec
from llmops.rollback.kinds import kind_of

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine

__all__ = ["KEEP_ROWS_PER_REF", "KEEP_SECONDS", "Sample", "TelemetryPoller", "TelemetryStore",
           "ref_of"]

KEEP_SECONDS = 24 * 3600
KEEP_ROWS_PER_REF = 2000
COLUMNS: dict[str, type] = {"ref": str, "at": float, "up": int, "data": str}


def ref_of(kind: str, name: str) -> str:
    """A resource as telemetry and the journal name it: "kind/name"."""
    return f"{kind}/{name}"


class TelemetryStore:
    """The `telemetry` table: appended by pollers, expired by age and by count per ref."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        lock: threading.RLock | None = None,
        *,
        keep_rows: int = KEEP_ROWS_PER_REF,
    ) -> None:
        self.db = db
        self.keep_rows = keep_rows
        self.lock = lock or threading.RLock()
        with self.lock:
            table = self.db.table("telemetry")
            if table.exists() and "ref" not in table.columns_dict:
                table.drop()  # the per-server table of before: a cache, so made afresh
            if not table.exists():
                table.create(COLUMNS)
                table.create_index(["ref", "at"])

    def add(self, sample: Sample) -> None:
        row = {
            "ref": sample.ref,
            "at": sample.at,
            "up": int(sample.up),
            "data": json.dumps(sample.values),
        }
        with self.lock, self.db.conn:
            self.db.table("telemetry").insert(row)
            self.db.execute("delete from telemetry where at < ?", [time.time() - KEEP_SECONDS])
            self.db.execute(
                "delete from telemetry where ref = ? and rowid not in (select rowid from "
                "telemetry where ref = ? order by at desc limit ?)",
                [sample.ref, sample.ref, self.keep_rows],
            )

    def recent(self, ref: str, limit: int = 60) -> list[Sample]:
        """The newest samples of a resource, oldest first (what a sparkline wants)."""
        with self.lock:
            rows = self.db.execute(
                "select ref, at, up, data from telemetry where ref = ? order by at desc limit ?",
                [ref, limit],
            ).fetchall()
        return [Sample(r, at, bool(up), json.loads(data)) for r, at, up, data in reversed(rows)]

    def latest(self, ref: str) -> Sample | None:
        found = self.recent(ref, 1)
        return found[-1] if found else None

    def count(self, ref: str) -> int:
        with self.lock:
            row = self.db.execute("select count(*) from telemetry where ref = ?", [ref])
            return int(row.fetchone()[0])


class TelemetryPoller:
    """Samples resources of any kind that has telemetry and stores one Sample per poll.

    One poller per console; `poll` runs in worker threads (one resource per call). A sampler
    lives while its spec stays the same; a resource that does not answer (or whose sampler
    fails) gives an `up=False` sample, never an exception."""

    def __init__(self, engine: Engine) -> None:
        self.hosts = engine.hosts
        self.store = TelemetryStore(engine.lab.journal.db, engine.lab.journal.lock)
        self.samplers: dict[str, tuple[Spec, Sampler]] = {}
        self._lock = threading.Lock()

    def _sampler(self, ref: str, kind: HasTelemetry, spec: Spec) -> Sampler:
        with self._lock:
            held = self.samplers.get(ref)
            if held is not None and held[0] == spec:
                return held[1]
        self._drop(ref)
        sampler = kind.sampler(spec, self.hosts)
        with self._lock:
            self.samplers[ref] = (spec, sampler)
        return sampler

    def _drop(self, ref: str) -> None:
        with self._lock:
            held = self.samplers.pop(ref, None)
        if held is not None:
            held[1].close()

    def poll(self, spec: Spec) -> Sample:
        """One sample of one resource, stored and returned."""
        kind = kind_of(spec)
        if not isinstance(kind, HasTelemetry):
            raise TypeError(f"a {kind.name} has no telemetry")
        ref = ref_of(kind.name, spec.name)
        try:
            values = self._sampler(ref, kind, spec).sample()
        except Exception:  # noqa: BLE001 - a sampler's bug degrades its own series only
            self._drop(ref)
            values = None
        sample = Sample(ref, time.time(), values is not None, values or {})
        self.store.add(sample)
        return sample

    def close(self) -> None:
        for ref in list(self.samplers):
            self._drop(ref)
