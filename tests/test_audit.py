"""The audit trail (issue 13, item 10): every action — who (OS user and host of the console
or CLI), what, when, result, duration — is in the journal, `llmops audit --json` exports it,
and `llmops history --verify` checks the chain it comes from."""

from __future__ import annotations

import getpass
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from labtools import llmops, llmops_json


def test_audit_exports_every_action_with_who_what_when_result_and_duration(
    tmp_path: Path,
) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "init", create=False)
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    t0 = datetime.now(UTC)
    llmops(lab, "host", "add", "a1", "--local", "--python", sys.executable,
           "--workdir", str(tmp_path / "w1"))
    llmops(lab, "host", "add", "b1", "--local", "--python", str(broken),
           "--workdir", str(tmp_path / "w2"), check=1)
    llmops(lab, "rollback", "1")

    rows = llmops_json(lab, "audit")
    assert [r["id"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["user"] == getpass.getuser() and row["host"] == socket.gethostname()
        assert row["seconds"] is not None and row["seconds"] > 0
        started = datetime.fromisoformat(row["started_at"])
        finished = datetime.fromisoformat(row["finished_at"])
        assert t0 - timedelta(seconds=1) <= started <= finished
    assert [r["what"] for r in rows] == ["host a1 added", "host b1 added", "rollback of action 1"]
    assert [r["result"] for r in rows] == ["rolled back", "failed, reverted", "succeeded"]
    assert rows[0]["resources"] == ["host/a1"] and rows[0]["type"] == "apply"
    assert rows[2]["type"] == "rollback" and rows[2]["rollback_of"] == 1
    assert "probe" in rows[1]["error"] or rows[1]["error"]

    assert [r["id"] for r in llmops_json(lab, "audit", "--since", "2")] == [2, 3]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert llmops_json(lab, "audit", "--since", later) == []
    assert llmops(lab, "audit", "--since", "yesterday", check=2).returncode == 2
    text = llmops(lab, "audit").stdout
    assert "host a1 added" in text and getpass.getuser() in text
    assert llmops_json(lab, "history", "--verify")["ok"]
