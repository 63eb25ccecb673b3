"""Alerts: target breaches seen by the telemetry poll, with hysteresis, journalled as events
and handed to the operator's command (issue 12). A mixin of the Engine.

The rules and the hysteresis are pure (ops/kinds/server/alertrules.py); here they meet the
lab: the hysteresis state and the alert history live in lab.db (`alert_state`, `alerts`:
caches beside the journal, like `telemetry`), so a console and `llmops alert watch --once`
from cron share them. A raise (and a clear) is journalled as an operation of kind `alert`
(started, committed naming HEAD, one step carrying the alert, succeeded) under the lab lock,
so History lists it and `--verify` chains and anchors it; when an action holds the lock the
row is written by a later poll. The operator's command (`alerts.toml`) runs once per raise,
outside the lock, with the alert as JSON on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils
from pydantic import ValidationError

from llmops.ops.kinds.base import Sample, Spec, SpecError
from llmops.ops.kinds.server.alertrules import (
    AlertConfig,
    Reading,
    RuleState,
    Transition,
    raise_after_for,
    readings,
    step,
)
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.changes import who
from llmops.rollback.lab import Lab
from llmops.rollback.lock import LabBusy, current_command
from llmops.rollback.telemetry import ref_of

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

__all__ = ["CONFIG_FILE", "AlertConfig", "AlertEvent", "Alerts"]

CONFIG_FILE = "alerts.toml"
ALERT = "alert"
"""The journal kind of a raise or a clear: an operation, nothing to roll back."""
JOURNAL_WAIT = 0.5
"""Seconds a poll waits for the lab lock to journal an alert (an action may hold it)."""
STATE_COLUMNS: dict[str, type] = {"ref": str, "rule": str, "active": int, "bad": int,
                                  "good": int, "alert_id": int, "updated": float}
ALERT_COLUMNS: dict[str, type] = {
    "id": int, "ref": str, "rule": str, "raised_at": str, "cleared_at": str, "value": float,
    "threshold": float, "unit": str, "message": str, "journal_raised": int,
    "journal_cleared": int, "command_rc": int, "command_error": str,
}


@dataclass(frozen=True)
class AlertEvent:
    """A raise or a clear: what the console notifies, the journal keeps and the command reads."""

    transition: str
    id: int
    ref: str
    rule: str
    value: float | None
    threshold: float
    unit: str
    message: str
    at: str

    def payload(self) -> dict[str, Any]:
        kind, _, name = self.ref.partition("/")
        return {"alert": self.transition, "id": self.id, "ref": self.ref, "kind": kind,
                "name": name, "rule": self.rule, "value": self.value,
                "threshold": self.threshold, "unit": self.unit, "message": self.message,
                "at": self.at}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AlertStore:
    """`alert_state` (hysteresis per ref and rule) and `alerts` (every raise, and its clear)."""

    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock
        with lock, db.conn:
            if "alert_state" not in db.table_names():
                db.table("alert_state").create(STATE_COLUMNS, pk=("ref", "rule"))
            if "alerts" not in db.table_names():
                db.table("alerts").create(ALERT_COLUMNS, pk="id")
                db.table("alerts").create_index(["ref", "rule"])

    def states(self, ref: str) -> dict[str, tuple[RuleState, int | None]]:
        rows = self.db.execute(
            "select rule, active, bad, good, alert_id from alert_state where ref = ?", [ref])
        return {r[0]: (RuleState(bool(r[1]), r[2], r[3]), r[4]) for r in rows.fetchall()}

    def query(self, where: str, args: list[Any], limit: int = 50) -> list[dict[str, Any]]:
        with self.lock:
            cursor = self.db.execute(
                f"select * from alerts where {where} order by id desc limit ?", [*args, limit])
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


class Alerts:
    """Alert state and delivery (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool

    # -- configuration ------------------------------------------------------------------------
    def alert_config(self) -> AlertConfig:
        """The lab's alerts.toml (defaults when there is none); SpecError naming the field."""
        path = self.lab.path / CONFIG_FILE
        if not path.exists():
            return AlertConfig()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SpecError(CONFIG_FILE, f"cannot read it: {exc}", "fix the TOML") from exc
        try:
            return AlertConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or CONFIG_FILE
            raise SpecError(f"{CONFIG_FILE}: {field}", first["msg"].removeprefix("Value error, "),
                            f"edit {path}") from None

    def alert_config_told(self) -> tuple[AlertConfig, str | None]:
        """The lab's alerts.toml, or the defaults (no command) when it is bad, with the problem
        the first time it is seen: a console keeps alerting and says so once, not every poll."""
        try:
            return self.alert_config(), None
        except SpecError as exc:
            told = self.__dict__.setdefault("_alert_config_told", set())
            problem = None if str(exc) in told else str(exc)
            told.add(str(exc))
            return AlertConfig(), problem

    @property
    def alert_store(self) -> AlertStore:
        return AlertStore(self.lab.journal.db, self.lab.journal.lock)

    # -- one sample -------------------------------------------------------------------------
    def has_alert_rules(self, spec: Spec) -> bool:
        """Whether a resource's samples are checked for alerts (servers; other kinds not yet)."""
        return isinstance(spec, ServerSpec)

    def observe_alerts(self, spec: Spec, sample: Sample, state: str | None = None, *,
                       act: bool = True, config: AlertConfig | None = None
                       ) -> list[AlertEvent]:
        """Run a resource's sample through its alert rules (servers only; other kinds have
        none) and return the raises and clears it caused. `state`: the resource's observed
        state when the caller knows it. `act` off (a read-only console): the hysteresis is
        kept in memory only, nothing is journalled and no command runs."""
        if not isinstance(spec, ServerSpec):
            return []
        config = config or self.alert_config()
        ref = sample.ref
        last_states: dict[str, str] = self.__dict__.setdefault("_last_states", {})
        if state:
            last_states[ref] = state
        planned = not sample.up and self.changing(ref)
        found = readings(spec, sample.up, sample.values,
                         state=None if planned else last_states.get(ref),
                         gpu_total_bytes=self._gpu_total(spec), ups=self._ups(ref),
                         now=sample.at, config=config)
        events = self._step_all(ref, found, config, act)
        if act:
            self._deliver(events, config)
        return events

    def changing(self, ref: str) -> bool:
        """Whether an action on this resource is in flight now: unfinished in the journal while
        the lab lock is held. A server it stops or restarts is a planned stop, never a crash
        (an unfinished action left by a dead console holds no lock, so it hides nothing)."""
        if self.lab.lock.holder() is None:
            return False
        with self.lab.journal.lock:
            unfinished = self.lab.journal.unfinished()
        return any(ref_of(kind, name) == ref for action in unfinished for kind, name in action.refs)

    def _ups(self, ref: str) -> list[tuple[float, bool]]:
        with self.lab.journal.lock:
            rows = self.lab.journal.db.execute(
                "select at, up from telemetry where ref = ? order by at desc limit 200", [ref]
            ).fetchall() if "telemetry" in self.lab.journal.db.table_names() else []
        return [(at, bool(up)) for at, up in reversed(rows)]

    def _gpu_total(self, spec: ServerSpec) -> float | None:
        gpus = (self.hosts.facts(spec.host) or {}).get("gpus") or []
        mine = [g for g in gpus if spec.gpus is None or g.get("index") in spec.gpus]
        total = sum(float(g.get("memory_total_bytes") or 0) for g in mine)
        return total or None

    def _held(self, ref: str, store: AlertStore | None
              ) -> dict[str, tuple[RuleState, int | None]]:
        if store is not None:
            return store.states(ref)
        return {rule: v for (r, rule), v in self._memory_states().items() if r == ref}

    def _step_all(self, ref: str, found: list[Reading], config: AlertConfig, act: bool
                  ) -> list[AlertEvent]:
        """The hysteresis of every rule. Kept in lab.db, a sample that moves any rule is read
        again and written in one IMMEDIATE transaction, so a console and a watcher never raise
        the same alert twice; a sample that moves nothing writes nothing."""
        store = self.alert_store if act else None

        def moves(held: dict[str, tuple[RuleState, int | None]]
                  ) -> list[tuple[Reading, RuleState, Transition | None, int | None]]:
            found_moves = []
            for reading in found:
                before, alert_id = held.get(reading.rule, (RuleState(), None))
                after, moved = step(before, reading.verdict(config.clear_margin_pct),
                                    raise_after=raise_after_for(reading.rule, config),
                                    clear_after=config.clear_after)
                if after != before or moved is not None:
                    found_moves.append((reading, after, moved, alert_id))
            return found_moves

        journal = self.lab.journal
        with journal.lock:
            if not moves(self._held(ref, store)):
                return []
            conn = journal.db.conn
            if store is not None:
                conn.execute("BEGIN IMMEDIATE")
            try:
                events = [self._apply_move(store, ref, *move)
                          for move in moves(self._held(ref, store))]
            except BaseException:
                if store is not None:
                    conn.rollback()
                raise
            if store is not None:
                conn.commit()
        return [event for event in events if event is not None]

    def _apply_move(self, store: AlertStore | None, ref: str, reading: Reading,
                    after: RuleState, moved: Transition | None, alert_id: int | None
                    ) -> AlertEvent | None:
        name, at = ref.partition("/")[2], _now()
        if moved == "raised":
            alert_id = self._open_alert(store, ref, reading, reading.message(name), at)
        if moved == "cleared" and store is not None and alert_id:
            store.db.conn.execute("update alerts set cleared_at = ? where id = ?",
                                  [at, alert_id])
        self._put_state(store, ref, reading.rule, after, alert_id if after.active else None)
        if moved is None:
            return None
        message = reading.message(name) if moved == "raised" else reading.cleared_message(name)
        return AlertEvent(moved, alert_id or 0, ref, reading.rule, reading.value,
                          reading.threshold, reading.unit, message, at)

    def _memory_states(self) -> dict[tuple[str, str], tuple[RuleState, int | None]]:
        """The hysteresis of a read-only caller: kept in this process, never written."""
        return self.__dict__.setdefault("_alert_memory", {})  # type: ignore[no-any-return]

    def _open_alert(self, store: AlertStore | None, ref: str, reading: Reading, message: str,
                    at: str) -> int:
        if store is None:
            return 0
        cursor = store.db.conn.execute(
            "insert into alerts (ref, rule, raised_at, value, threshold, unit, message,"
            " journal_raised, journal_cleared) values (?, ?, ?, ?, ?, ?, ?, 0, 0)",
            [ref, reading.rule, at, reading.value, reading.threshold, reading.unit, message])
        return int(cursor.lastrowid or 0)

    def _put_state(self, store: AlertStore | None, ref: str, rule: str, state: RuleState,
                   alert_id: int | None) -> None:
        if store is None:
            self._memory_states()[(ref, rule)] = (state, alert_id)
            return
        store.db.conn.execute(
            "insert or replace into alert_state (ref, rule, active, bad, good, alert_id,"
            " updated) values (?, ?, ?, ?, ?, ?, ?)",
            [ref, rule, int(state.active), state.bad, state.good, alert_id, time.time()])

    # -- delivery -------------------------------------------------------------------------------
    def _deliver(self, events: list[AlertEvent], config: AlertConfig) -> None:
        """Journal what is not journalled yet (these and any a busy lock held back), then run
        the operator's command once per raise (and per clear with `on_clear`)."""
        self._journal_pending()
        for event in events:
            if event.transition == "raised" or config.on_clear:
                self._run_command(event, config)

    def _journal_pending(self) -> None:
        store = self.alert_store
        waiting = store.query("journal_raised = 0 or (cleared_at is not null and"
                              " journal_cleared = 0)", [], 20)
        if not waiting:
            return
        try:
            with self.lab.lock.hold(current_command(), wait=JOURNAL_WAIT):
                for row in reversed(waiting):
                    for transition, column, at in (("raised", "journal_raised", row["raised_at"]),
                                                   ("cleared", "journal_cleared",
                                                    row["cleared_at"])):
                        if at is None or row[column]:
                            continue
                        self._journal_alert(transition, row)
                        with store.lock, store.db.conn:
                            store.db.conn.execute(f"update alerts set {column} = 1 where id = ?",
                                                  [row["id"]])
        except LabBusy:
            return  # an action holds the lab: the next poll journals them

    def _journal_alert(self, transition: str, row: dict[str, Any]) -> None:
        """An operation of kind `alert`: the rows every action has, no commit of its own."""
        journal, head = self.lab.journal, self.lab.head()
        began = time.monotonic()
        action_id = self.lab.next_action_id()
        kind, _, name = row["ref"].partition("/")
        summary = (f"alert {transition}: {row['message']}" if transition == "raised"
                   else f"alert cleared: {row['message']}")
        journal.append(action_id, "started", {
            "kind": ALERT, "summary": summary, "who": who(), "refs": [[kind, name]],
            "before_commit": head, "rollback_of": None, "specs": {},
        })
        journal.append(action_id, "committed", {"commit": head})
        facts = {k: row[k] for k in ("id", "rule", "value", "threshold", "unit", "raised_at",
                                     "cleared_at")}
        journal.append(action_id, "step", {
            "ref": row["ref"], "verb": f"alert {transition}", "detail": row["message"],
            "phase": "apply", "ok": True, "seconds": round(time.monotonic() - began, 3),
            "facts": facts,
        })
        journal.append(action_id, "succeeded", {
            "after_commit": head, "seconds": round(time.monotonic() - began, 3)})

    def _run_command(self, event: AlertEvent, config: AlertConfig) -> None:
        """The operator's command with the alert as JSON on stdin; its exit code is kept with
        the alert (a failing webhook never stops the poll)."""
        argv = config.argv(os.environ)
        if not argv:
            return
        rc: int | None
        try:
            done = subprocess.run(argv, input=json.dumps(event.payload()), text=True,  # noqa: S603 - an argv list, no shell
                                  capture_output=True, timeout=config.command_timeout_s,
                                  check=False)
            rc, error = done.returncode, (done.stderr or "")[-300:] or None
        except (OSError, subprocess.TimeoutExpired) as exc:
            rc, error = None, f"{type(exc).__name__}: {exc}"[:300]
        if event.id:
            store = self.alert_store
            with store.lock, store.db.conn:
                store.db.conn.execute(
                    "update alerts set command_rc = ?, command_error = ? where id = ?",
                    [rc, error, event.id])

    # -- reading --------------------------------------------------------------------------------
    def alerts(self, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """Active alerts and the recent ones (newest first): `llmops alert list`."""
        store = self.alert_store
        held = "select alert_id from alert_state where active = 1"
        return {"active": store.query(f"cleared_at is null and id in ({held})", [], limit),
                "recent": store.query("1 = 1", [], limit)}
