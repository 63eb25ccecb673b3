"""Following a trainer that was just started: until its start line and first log, or the
cause of its death (its error record, else its log's cause line), as progress lines."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from llmops.ops import procs
from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.run.hostcalls import RunError, cause, hostread, log_path
from llmops.ops.transport import Transport

WAIT_TIMEOUT = 3600.0
"""A start's first log line: loading a big base and `logging_steps` steps can take a while."""


def _epoch(iso: str | None) -> float:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return 0.0


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def describe(record: dict[str, Any]) -> str:
    """A progress record in a few words, for the progress stream."""
    event = record.get("event")
    if event == "log":
        return (f"step {record.get('step')}/{record.get('max_steps')} loss "
                f"{_num(record.get('loss'))} ({_num(record.get('tokens_per_s'))} tok/s)")
    if event == "eval":
        return f"step {record.get('step')} eval loss {_num(record.get('eval_loss'))}"
    if event == "start":
        resumed = record.get("resumed_from")
        return (f"training started: {record.get('max_steps')} steps, "
                f"{record.get('train_rows')} rows" + (f", resumed at {resumed}" if resumed else ""))
    return f"{event} " + json.dumps({k: v for k, v in record.items() if k not in ("event", "at")})


def wait_progress(t: Transport, proc: str, folder: str, progress: Progress) -> dict[str, Any]:
    """Until the trainer wrote its start line and one log (or finished); a trainer that died
    fails the step with the cause: its error record, else its log's cause line."""
    started = _epoch(procs.status(t, proc).started_at) - 2
    began = time.monotonic()
    offset = -262144  # from the tail: a resumed run's older records are not this start's
    seen: list[dict[str, Any]] = []
    exited = None
    while True:
        answer = hostread(t, "events", folder, str(offset))
        offset = int(answer["offset"])
        fresh = [r for r in answer["records"] if float(r.get("at") or 0) >= started]
        for record in fresh:
            progress(describe(record)[:300])
        seen += fresh
        events = [str(r.get("event")) for r in seen]
        if "done" in events or ("start" in events and "log" in events[events.index("start"):]):
            last: dict[str, Any] = next(
                (r for r in reversed(seen) if r.get("event") in ("log", "done")), {}
            )
            return {"step": last.get("step"), "seconds": round(time.monotonic() - began, 2)}
        for record in seen:
            if record.get("event") in ("error", "stopped"):
                raise RunError(
                    f"{proc} {record['event']} before its first log: "
                    f"{record.get('message') or cause(t, proc)} (log: {log_path(t, proc)})"
                )
        if exited is not None:  # read once more after it exited: nothing came
            raise RunError(
                f"{proc} exited while starting (rc {exited.rc}): {cause(t, proc)} "
                f"(whole log: {exited.log} on {t.host})"
            )
        info = procs.status(t, proc)
        if not info.running:
            exited = info
            continue
        if time.monotonic() - began > WAIT_TIMEOUT:
            raise RunError(
                f"{proc} wrote no log line in {WAIT_TIMEOUT:.0f}s: {cause(t, proc, stuck=True)}"
            )
        time.sleep(0.5)
