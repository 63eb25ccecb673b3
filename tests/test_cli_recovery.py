"""A CLI-only operator whose `llmops` was killed mid-action: the next command that may act
recovers it (as the console does at start-up), names the process that died, and
`llmops rollback N` undoes it. Only the CLI is used after the kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from labtools import LLMOPS, llmops, llmops_json


def events(lab: Path, kind: str) -> int:
    with sqlite3.connect(lab / "lab.db") as db:
        return int(db.execute("select count(*) from events where event = ?", (kind,)).fetchone()[0])


def test_killed_cli_action_is_recovered_by_the_next_cli_call(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "init", create=False)
    pidfile = tmp_path / "sleeper.pid"
    slow = tmp_path / "slowpy"  # the host's "python": the probe hangs in it
    slow.write_text(f'#!/bin/sh\necho $$ > {pidfile}\nexec sleep 120\n')
    slow.chmod(0o755)
    argv = [*LLMOPS, "--lab", str(lab), "host", "add", "slow", "--local", "--python", str(slow)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while events(lab, "committed") == 0 or not pidfile.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no action under way"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if pidfile.exists():  # the probe's sleeper runs in its own session
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    back = llmops(lab, "rollback", "1", "--json")
    assert f"action 1 was interrupted: llmops (pid {proc.pid}," in back.stderr, back.stderr
    assert "host add slow" in back.stderr and "console" not in back.stderr
    assert not (lab / "hosts/slow.toml").exists()

    history = {a["id"]: a for a in llmops_json(lab, "history")}
    assert history[1]["status"] == "interrupted"
    error = history[1]["error"]
    assert error.startswith(f"llmops (pid {proc.pid}, `") and "host add slow" in error
    assert error.endswith("`) died mid-action")
    assert history[2]["rollback_of"] == 1 and history[2]["status"] == "succeeded"
    assert events(lab, "interrupted") == 1  # recovered once, not by every later call
