"""The journal: an append-only, hash-chained log of every action's events in `lab.db`.

Rows are never updated: an action's status is folded from its events, so the chain can
prove that nobody rewrote history (`llmops history --verify`; rollback/anchors.py ties the
chain to git). Readers fold only the actions they show: a journal grows without bound.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from llmops.rollback.records import ActionRecord, Event, fold_all

GENESIS = "0" * 64
COLUMNS = "seq, action_id, at, event, data, prev_hash, hash"
ENDINGS = ("succeeded", "failed", "interrupted")

SCHEMA_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE INDEX IF NOT EXISTS events_event_action ON events(event, action_id);
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def event_hash(
    seq: int, action_id: int, at: str, event: str, data_json: str, prev_hash: str
) -> str:
    payload = json.dumps([seq, action_id, at, event, data_json, prev_hash], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


_OPEN: weakref.WeakSet[Journal] = weakref.WeakSet()


def open_here(path: Path) -> bool:
    """Whether this process holds a journal open on `path`. Then nothing but SQLite may open
    the file: closing any other descriptor on it drops every POSIX lock the process holds
    there (sqlite.org/howtocorrupt.html 2.2), so another process's last close would see no
    reader, checkpoint and reset the WAL under this one: "database disk image is malformed"."""
    resolved = path.resolve()
    return any(j.path == resolved and not j.closed for j in list(_OPEN))


class Journal:
    """Appends events (thread-safe) and folds them into action records."""

    def __init__(self, path: Path) -> None:
        self.path, self.closed = path.resolve(), False
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")  # the console reads while a CLI call writes
        # WAL + NORMAL: a row is durable once its transaction ends, through any process kill
        # (tests/test_fault_kill.py); only a power cut may lose the newest rows, never the
        # chain's consistency. FULL would fsync every row (three per action).
        conn.execute("PRAGMA synchronous=NORMAL")
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        self.listeners: list[Callable[[Event], None]] = []
        self._ensure_schema()
        _OPEN.add(self)

    def _ensure_schema(self) -> None:
        with self.lock:
            if "events" not in self.db.table_names():
                self.db.table("events").create(
                    {
                        "seq": int,
                        "action_id": int,
                        "at": str,
                        "event": str,
                        "data": str,
                        "prev_hash": str,
                        "hash": str,
                    },
                    pk="seq",
                )
                self.db.table("events").create_index(["action_id"])
            if "observed" not in self.db.table_names():
                self.db.table("observed").create(
                    {"kind": str, "name": str, "at": str, "data": str}, pk=("kind", "name")
                )
            self.db.conn.executescript(SCHEMA_TRIGGERS)

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener` with every new event (from the writing thread); returns the
        function that unsubscribes it."""
        with self.lock:
            self.listeners.append(listener)

        def unsubscribe() -> None:
            with self.lock:
                if listener in self.listeners:
                    self.listeners.remove(listener)

        return unsubscribe

    # -- writing -------------------------------------------------------------------------
    def next_action_id(self, after: int = 0) -> int:
        """One more than the highest action journalled or `after` (the highest git knows)."""
        return max(self.max_action_id(), after) + 1

    def append(self, action_id: int, event: str, data: dict[str, Any] | None = None) -> Event:
        """Write one event, chained to the one before, inside a transaction."""
        data_json = json.dumps(data or {}, sort_keys=True, default=str)
        with self.lock, self.db.conn:
            last = self.db.execute(
                "select seq, hash from events order by seq desc limit 1"
            ).fetchone()
            seq = (last[0] + 1) if last else 1
            prev = last[1] if last else GENESIS
            at = now()
            digest = event_hash(seq, action_id, at, event, data_json, prev)
            self.db.table("events").insert(
                {
                    "seq": seq,
                    "action_id": action_id,
                    "at": at,
                    "event": event,
                    "data": data_json,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
        record = Event(seq, action_id, at, event, json.loads(data_json), prev, digest)
        for listener in list(self.listeners):
            listener(record)
        return record

    def record_observed(self, kind: str, name: str, data: dict[str, Any] | None) -> None:
        """Last facts seen about a resource (not part of the chain: it is a cache)."""
        with self.lock, self.db.conn:
            if data is None:
                self.db.execute("delete from observed where kind = ? and name = ?", [kind, name])
            else:
                self.db.table("observed").upsert(
                    {
                        "kind": kind,
                        "name": name,
                        "at": now(),
                        "data": json.dumps(data, default=str),
                    },
                    pk=("kind", "name"),
                )

    def observed(self, kind: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(
                "select data, at from observed where kind = ? and name = ?", [kind, name]
            ).fetchone()
        if not row:
            return None
        return {**json.loads(row[0]), "observed_at": row[1]}

    # -- reading -------------------------------------------------------------------------
    def _events(
        self, where: str = "", args: list[Any] | None = None, order: str = "seq"
    ) -> list[Event]:
        with self.lock:
            rows = self.db.execute(
                f"select {COLUMNS} from events {where} order by {order}", args or []
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def _fold(self, where: str = "", args: list[Any] | None = None) -> list[ActionRecord]:
        """The actions whose rows match, folded. In action order: the action_id index then
        serves the range (in seq order SQLite would scan the whole table to skip a sort)."""
        return fold_all(self._events(where, args, order="action_id, seq"))

    def _scalar(self, sql: str, args: list[Any] | None = None) -> Any:
        with self.lock:
            return self.db.execute(sql, args or []).fetchone()[0]

    def events(self, action_id: int | None = None) -> list[Event]:
        if action_id is None:
            return self._events()
        return self._events("where action_id = ?", [action_id])

    def events_between(self, first: int, last: int) -> list[Event]:
        """Rows `first` to `last` (by seq), for a check that needs only those."""
        return self._events("where seq between ? and ?", [first, last])

    def head(self) -> Event | None:
        """The newest row: what a commit made now anchors (rollback/anchors.py)."""
        found = self._events("where seq = (select max(seq) from events)")
        return found[0] if found else None

    def row_count(self) -> int:
        return int(self._scalar("select count(*) from events"))

    def action_count(self) -> int:
        return int(self._scalar("select count(*) from events where event = 'started'"))

    def rebuilt_through(self) -> int:
        """The highest action rebuilt from git after lab.db was lost (0: none)."""
        return int(self._scalar(
            "select coalesce(max(action_id), 0) from events where event = 'started'"
            " and json_extract(data, '$.rebuilt') is not null"))

    def max_action_id(self) -> int:
        return int(self._scalar("select coalesce(max(action_id), 0) from events"))

    def verify(self) -> list[str]:
        """Problems in the hash chain; empty when every row is as it was written."""
        problems = []
        prev = GENESIS
        expected_seq = 1
        with self.lock:
            rows = self.db.execute(f"select {COLUMNS} from events order by seq").fetchall()
        for seq, action_id, at, event, data_json, prev_hash, digest in rows:
            if seq != expected_seq:
                problems.append(f"row {expected_seq} is missing (next row is {seq})")
            if prev_hash != prev:
                problems.append(f"row {seq}: previous-hash does not match row {seq - 1}")
            if event_hash(seq, action_id, at, event, data_json, prev_hash) != digest:
                problems.append(f"row {seq} (action {action_id}, {event}) was altered")
            prev = digest
            expected_seq = seq + 1
        return problems

    def actions(
        self, *, limit: int | None = None, since: str | None = None, from_id: int = 0
    ) -> list[ActionRecord]:
        """Actions oldest first, folded from their events only: the newest `limit`, those
        started at or after `since` (an ISO time, UTC) and those numbered `from_id` or more.
        A later rollback of a shown action is newer, so it is shown too ("rolled back")."""
        bound = from_id
        if limit is not None:
            if limit <= 0:
                return []
            newest = "select action_id from events where event = 'started'"
            found = self._scalar(
                f"select min(action_id) from ({newest} order by action_id desc limit ?)", [limit]
            )
            bound = max(bound, found or 0)
        if since is not None:
            found = self._scalar(
                "select min(action_id) from events where event = 'started' and at >= ?", [since]
            )
            if found is None:
                return []
            bound = max(bound, found)
        return self._fold("where action_id >= ?", [bound]) if bound else self._fold()

    def action(self, action_id: int) -> ActionRecord | None:
        """One action, folded from its rows and those of the rollbacks naming it."""
        rollbacks = (
            "select action_id from events where event = 'started' and action_id > ?"
            " and json_extract(data, '$.rollback_of') = ?"
        )
        found = self._fold(f"where action_id = ? or action_id in ({rollbacks})", [action_id] * 3)
        return next((a for a in found if a.id == action_id), None)

    def unfinished(self) -> list[ActionRecord]:
        """Actions with no outcome row yet: running now, or left by a console that died."""
        ended = ", ".join(f"'{e}'" for e in ENDINGS)
        ids = (
            "select action_id from events where event = 'started' except"
            f" select action_id from events where event in ({ended})"
        )
        return self._fold(f"where action_id in ({ids})")

    def touching(self, refs: list[tuple[str, str]], *, from_id: int = 0) -> list[ActionRecord]:
        """The actions on any of these resources numbered `from_id` or more (oldest first),
        without folding the rest: a rollback touches what it undoes, so "rolled back" holds."""
        if not refs:
            return []
        patterns = [json.dumps(list(ref)) for ref in refs]  # as `append` wrote them
        found = " or ".join("instr(data, ?) > 0" for _ in patterns)
        ids = (
            "select action_id from events where event = 'started' and action_id >= ?"
            f" and ({found})"
        )
        wanted = set(refs)
        records = self._fold(f"where action_id in ({ids})", [from_id, *patterns])
        return [a for a in records if wanted & set(a.refs)]

    def step_facts(self, ref: str) -> list[dict[str, Any]]:
        """The facts journalled by the steps of resource `ref` ("kind/name"), newest first:
        what a kind wrote down in an action to find again later (an env's manifests)."""
        needle = json.dumps({"ref": ref})[1:-1]  # as `append` wrote it (sort_keys, default seps)
        with self.lock:
            rows = self.db.execute(
                "select data from events where event = 'step' and instr(data, ?) > 0 "
                "order by seq desc", [needle]).fetchall()
        found = []
        for (raw,) in rows:
            data = json.loads(raw)
            if data.get("ref") == ref and isinstance(data.get("facts"), dict):
                found.append(data["facts"])
        return found

    def close(self) -> None:
        """Under the lock: a console's worker thread may be reading at that moment, and
        closing a connection in the middle of another thread's statement crashes the
        process (a segfault in SQLite); after it, a read raises sqlite3.ProgrammingError."""
        with self.lock:
            self.closed = True
            self.db.conn.close()
