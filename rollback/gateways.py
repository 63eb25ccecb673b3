"""The Engine's doors for gateways: a prompt through one, changing nothing (the console and
the CLI may not import a kind's package; they reach it through the Engine); and the
followers of an action: resources whose spec does not change but which must be reconciled in
the same action because a dependency they read moved (a gateway routing to a server whose
port changes), so one action, and one rollback, covers both; and the usage per model per
minute in lab.db (`gateway_usage`, a cache beside `telemetry`): the console tails the
callback's lines on the host into it, so the Gateway view draws rates over time."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import sqlite_utils

from llmops.ops.kinds.base import Ref, Spec
from llmops.ops.kinds.gateway import usage as gateway_usage
from llmops.ops.kinds.gateway.drill import fallback_drill
from llmops.ops.kinds.gateway.kind import GatewayKind
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.rollback.changes import Change
from llmops.rollback.kinds import KINDS

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.lab import Lab


@runtime_checkable
class Follows(Protocol):
    """A kind whose resources read a dependency's spec into their own state (the gateway's
    config holds its servers' addresses): told a dependency changes, it says whether the
    resource must be reconciled in the same action."""

    def follows(self, spec: Spec, dep: Ref, before: Spec | None, after: Spec | None) -> bool: ...


def followers(specs: dict[Ref, Spec], changes: list[Change],
              before: dict[Ref, Spec | None]) -> list[Change]:
    """(pure) Unchanged resources to reconcile with `changes`: each desired resource not
    changed itself whose kind follows one of its changed dependencies (`before`: that
    dependency's spec before the action). Their Change carries their spec as it is."""
    changed = {c.ref: c for c in changes}
    extra = []
    for ref, spec in specs.items():
        kind = KINDS[ref[0]]
        if ref in changed or not isinstance(kind, Follows):
            continue
        deps = set(kind.depends_on(spec).values()) & set(changed)
        if any(kind.follows(spec, dep, before.get(dep), changed[dep].spec) for dep in deps):
            extra.append(Change(ref[0], ref[1], spec))
    return extra


KEEP_SECONDS = 24 * 3600
"""Minutes older than this are dropped (as telemetry's samples are)."""
USAGE_COLUMNS: dict[str, type] = {"ref": str, "model": str, "minute": int,
                                  **dict.fromkeys(gateway_usage.MINUTE_FIELDS, float)}


class UsageMinutes:
    """`gateway_usage` (ref, model, minute -> sums) and `gateway_usage_read` (how far each
    gateway's usage file has been read). A read adds only lines past the stored offset, and
    only if no other reader moved it meanwhile (two consoles never count a line twice)."""

    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock
        with lock, db.conn:
            if "gateway_usage" not in db.table_names():
                db.table("gateway_usage").create(USAGE_COLUMNS, pk=("ref", "model", "minute"))
            have = db.table("gateway_usage").columns_dict
            for column in gateway_usage.MINUTE_FIELDS:  # a figure added since the lab's db
                if column not in have:  # was made: its past minutes count 0
                    db.table("gateway_usage").add_column(column, float, not_null_default=0)
            if "gateway_usage_read" not in db.table_names():
                db.table("gateway_usage_read").create(
                    {"ref": str, "path": str, "offset": int}, pk=("ref", "path"))

    def offset(self, ref: str, path: str) -> int:
        with self.lock:
            row = self.db.execute("select offset from gateway_usage_read where ref = ? and "
                                  "path = ?", [ref, path]).fetchone()
        return int(row[0]) if row else 0

    def add(self, ref: str, path: str, was: int, now: int,
            minutes: dict[tuple[str, int], dict[str, float]]) -> bool:
        """Sum `minutes` in and move the offset from `was` to `now`; False (nothing added)
        when another reader moved it first."""
        fields = gateway_usage.MINUTE_FIELDS
        sets = ", ".join(f"{f} = {f} + excluded.{f}" for f in fields)
        upsert = (f"insert into gateway_usage (ref, model, minute, {', '.join(fields)}) values "
                  f"({', '.join('?' * (3 + len(fields)))}) on conflict (ref, model, minute) "
                  f"do update set {sets}")
        with self.lock, self.db.conn:
            if self.offset(ref, path) != was:
                return False
            for (model, minute), sums in minutes.items():
                self.db.execute(upsert, [ref, model, minute, *(sums[f] for f in fields)])
            self.db.execute("insert or replace into gateway_usage_read (ref, path, offset) "
                            "values (?, ?, ?)", [ref, path, now])
            self.db.execute("delete from gateway_usage where minute < ?",
                            [time.time() - KEEP_SECONDS])
        return True

    def recent(self, ref: str, since: int) -> dict[str, dict[int, dict[str, float]]]:
        """{model: {minute: sums}} from `since` (epoch seconds) on."""
        fields = gateway_usage.MINUTE_FIELDS
        with self.lock:
            rows = self.db.execute(
                f"select model, minute, {', '.join(fields)} from gateway_usage where ref = ? "
                "and minute >= ? order by model, minute", [ref, since]).fetchall()
        found: dict[str, dict[int, dict[str, float]]] = {}
        for model, minute, *values in rows:
            found.setdefault(model, {})[int(minute)] = dict(zip(fields, values, strict=True))
        return found


def minute_series(recent: dict[str, dict[int, dict[str, float]]], until: int,
                  window: int) -> dict[str, list[dict[str, float]]]:
    """(pure) Each model's last `window` minutes up to the one starting at `until`, oldest
    first, a quiet minute as zeros (what a sparkline and a rate want)."""
    zero = dict.fromkeys(gateway_usage.MINUTE_FIELDS, 0.0)
    starts = [until - 60 * i for i in range(window - 1, -1, -1)]
    return {model: [{"minute": float(m), **minutes.get(m, zero)} for m in starts]
            for model, minutes in sorted(recent.items())}


class Gateways:
    """A prompt through a gateway: the answer, the server that gave it, cost, cache and
    fallbacks; the followers of an action (a mixin of the Engine)."""

    hosts: HostPool
    lab: Lab

    def gateway_try(self, spec: GatewaySpec, model: str, prompt: str,
                    max_tokens: int = 32) -> dict[str, Any]:
        kind = KINDS["gateway"]
        assert isinstance(kind, GatewayKind)
        return kind.try_prompt(spec, self.hosts, model, prompt, max_tokens)

    def gateway_minutes(self, spec: GatewaySpec, window: int = 30
                        ) -> dict[str, list[dict[str, float]]]:
        """The gateway's usage lines read on from where the last read stopped, summed per
        model per minute into lab.db; then each model's last `window` minutes (oldest first,
        the current one last). Host unreachable: what lab.db holds."""
        journal = self.lab.journal
        store = UsageMinutes(journal.db, journal.lock)
        ref = f"gateway/{spec.name}"
        try:
            path = gateway_usage.usage_file(spec, self.hosts)
            for _ in range(8):  # a large backlog comes in READ_LIMIT pieces
                was = store.offset(ref, path)
                lines, now = gateway_usage.read_new(spec, self.hosts, path, was)
                if now == was:
                    break
                records = gateway_usage.parse(lines)
                if not store.add(ref, path, was, now, gateway_usage.per_minute(records)):
                    break
        except Exception:  # noqa: BLE001 - the host away: show what was read before
            pass
        until = int(time.time() // 60) * 60
        return minute_series(store.recent(ref, until - 60 * (window - 1)), until, window)

    def gateway_drill(self, spec: GatewaySpec, port: int) -> dict[str, Any]:
        """The fallback drill: each model with fallbacks, its servers dead on a drill proxy
        (ops/kinds/gateway/drill.py); production and the lab untouched."""
        return fallback_drill(spec, self.hosts, port)

    def with_followers(self, changes: list[Change]) -> list[Change]:
        """`changes` and the resources that follow them (see `followers`), read from the lab
        as it is before the action is written: called by `Engine.act` under the lab lock."""
        specs = self.lab.specs(None)
        before = {c.ref: specs.get(c.ref) for c in changes}
        return [*changes, *followers(specs, changes, before)]
