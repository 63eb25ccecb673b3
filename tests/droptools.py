"""The SSH-drop proof's two halves, shared by the kinds' drop tests: an action whose host
goes away part-way (sshd killed with every connection it serves, at a progress line the test
picks), and the revert `plan` finishes once the host is back."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labtools import llmops, llmops_json
from sshhosts import SshHost

from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.records import ActionRecord

PENDING = "unknown — revert pending"
"""How `plan` shows a resource whose revert waits for its host."""


def words(text: str) -> str:
    return " ".join(text.split())


def act_dropping(lab: Path, change: Change, summary: str, host: SshHost,
                 when: Callable[[str], bool]) -> ActionRecord:
    """`change` through the engine, killing `host`'s sshd at the first progress line of the
    changed resource that `when` accepts. The action must fail naming the host and leave its
    revert pending (nothing can be undone while the host is away)."""
    ref = f"{change.kind}/{change.name}"
    dropped: list[str] = []

    def drop_once(_action: int, of: str, line: str) -> None:
        if of == ref and not dropped and when(line):
            dropped.append(line)
            host.kill()  # what it started runs on, detached; apply's next look finds no host

    engine = Engine(Lab(lab), lock_wait=2.0)
    try:
        engine.progress_listeners.append(drop_once)
        record = engine.act([change], summary)
        assert dropped, f"no progress line of {ref} was seen to drop on"
        assert record.status == "failed", record
        said = words(record.error or "")
        assert re.search(rf"(lost the connection to|cannot reach) {host.name}\b", said), said
        assert [p.ref for p in engine.pending.all()] == [(change.kind, change.name)]
        return record
    finally:
        engine.close()
        engine.lab.close()


def finish_revert(lab: Path, ref: str, host: SshHost) -> dict[str, Any]:
    """While the host is still down `plan` shows `ref` pending; with sshd back `plan`
    finishes the revert: its action (succeeded, every check passing) is returned."""
    rows = {r["resource"]: r for r in llmops_json(lab, "plan")}
    assert rows[ref]["state"] == PENDING, rows
    host.start()
    plan = words(llmops(lab, "plan", timeout=300).stdout)
    done = re.search(rf"{ref} revert finished — action (\d+)", plan)
    assert done, plan
    finished: dict[str, Any] = llmops_json(lab, "history", done.group(1))
    assert finished["status"] == "succeeded", finished
    assert finished["checks"] and all(c["ok"] for c in finished["checks"]), finished
    return finished
