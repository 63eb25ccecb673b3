"""Alerts on the session's shared CPU vLLM server (issue 12 item 5): a TTFT target set
impossibly low (a committed hand edit: an action would fail its checklist's targets check and
be reverted) raises an alert under traffic after the hysteresis's samples;
`llmops alert watch` journals it as an alert operation (the chain and its anchors hold) and
runs the operator's command once, with the alert as JSON on stdin — not on every poll, and not
again from a second watcher; a target back within reach clears it; alerts.toml with
credentials in its command is refused, nothing written."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from labtools import llmops, llmops_json
from sharedserver import SharedServer

from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.lab import Lab

pytestmark = [pytest.mark.vllm]

HOOK = """import json, sys
alert = json.load(sys.stdin)
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(alert) + "\\n")
"""


def reset_alert_state(lab: Path) -> None:
    """The hysteresis of the shared server starts afresh (a cache: another test's alert on
    it must not hold this one's raise back)."""
    with sqlite3.connect(lab / "lab.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        if "alert_state" in tables:
            db.execute("delete from alert_state where ref = 'server/shared'")


def write_config(lab: Path, hook: Path, out: Path) -> None:
    command = [sys.executable, str(hook), str(out)]
    (lab / "alerts.toml").write_text(f"raise_after = 2\nclear_after = 2\n"
                                     f"command = {json.dumps(command)}\n")


class Traffic:
    """Two clients sending short completions until stopped: requests in every TTFT window."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]

    def run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60) as http:
            model = http.get("/v1/models").json()["data"][0]["id"]
            while not self.stop.is_set():
                http.post("/v1/completions", json={"model": model, "prompt": "Hello",
                                                   "max_tokens": 8, "temperature": 0.0})

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def hand_edit(lab: Path, **fields: Any) -> str:
    """Change fields of servers/shared.toml by a committed hand edit (DESIGN: welcome; alerts
    read the committed spec). Not an action: the checklist's targets check would fail one that
    sets a target no server can meet, and revert it."""
    opened = Lab(lab)
    try:
        with opened.lock.hold("test: hand edit", wait=60):
            spec = opened.read_spec("server", "shared")
            assert isinstance(spec, ServerSpec)
            changed = ServerSpec.model_validate({**spec.model_dump(), **fields})
            rel = opened.write_spec("server", "shared", changed)
            return opened.commit(f"hand edit: server shared {fields}", [rel])
    finally:
        opened.close()


def set_target(lab: Path, ms: float) -> None:
    hand_edit(lab, target_ttft_p95_ms=ms)


@pytest.fixture
def breached(shared_server: SharedServer, tmp_path: Path) -> Iterator[Path]:
    """TTFT target 0.001 ms by an action, alerts.toml with a command appending to a file;
    the target and alerts.toml are put back afterwards."""
    lab = shared_server.lab
    hook, out = tmp_path / "hook.py", tmp_path / "hook.out"
    hook.write_text(HOOK)
    write_config(lab, hook, out)
    reset_alert_state(lab)
    set_target(lab, 0.001)
    try:
        yield out
    finally:
        set_target(lab, 200)
        (lab / "alerts.toml").unlink(missing_ok=True)
        reset_alert_state(lab)


def watch(lab: Path, rounds: int) -> list[dict[str, Any]]:
    done = llmops(lab, "alert", "watch", "--server", "shared", "--interval", "1", "--rounds",
                  str(rounds), "--json", timeout=300)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def ttft(alerts: list[dict[str, Any]], transition: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule"] == "ttft_p95" and a["alert"] == transition]


def hook_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []


def test_a_forced_breach_raises_once_runs_the_command_once_and_clears(
        shared_server: SharedServer, breached: Path) -> None:
    lab = shared_server.lab
    with Traffic(shared_server.port):
        first = watch(lab, 6)
        raised = ttft(first, "raised")
        assert len(raised) == 1, first
        assert raised[0]["value"] > raised[0]["threshold"] == 0.001
        assert "TTFT p95" in raised[0]["message"] and raised[0]["ref"] == "server/shared"
        again = watch(lab, 3)  # a second watcher shares the hysteresis: still raised
        assert ttft(again, "raised") == [], again

    ran = [a for a in hook_lines(breached) if a["rule"] == "ttft_p95"]
    assert len(ran) == 1, ran  # once per raise, not every poll
    assert ran[0]["alert"] == "raised" and ran[0]["id"] == raised[0]["id"]
    assert ran[0]["name"] == "shared" and ran[0]["unit"] == "ms"

    listed = llmops_json(lab, "alert", "list")
    active = [a for a in listed["active"] if a["id"] == raised[0]["id"]]
    assert len(active) == 1 and active[0]["rule"] == "ttft_p95", listed
    assert active[0]["command_rc"] == 0 and active[0]["journal_raised"] == 1

    journal = Lab(lab)
    try:
        alert_id = raised[0]["id"]
        alerts = [a for a in journal.journal.touching([("server", "shared")])
                  if a.kind == "alert" and a.steps and a.steps[0].facts.get("id") == alert_id]
        assert len(alerts) == 1, [a.summary for a in alerts]  # the raise, journalled once
        record = alerts[0]
        assert record.status == "succeeded" and record.summary.startswith("alert raised: ")
        assert "TTFT p95" in record.summary and record.is_operation
        assert [s.verb for s in record.steps] == ["alert raised"]
        assert record.steps[0].facts["rule"] == "ttft_p95"
        assert journal.verify() == []
    finally:
        journal.close()

    set_target(lab, 60000)  # within reach on any box: good samples clear it
    with Traffic(shared_server.port):
        cleared = ttft(watch(lab, 5), "cleared")
    assert [c["id"] for c in cleared] == [raised[0]["id"]], cleared
    assert "back within target 60000 ms" in cleared[0]["message"]
    listed = llmops_json(lab, "alert", "list")
    assert not [a for a in listed["active"] if a["id"] == raised[0]["id"]]
    assert [a["cleared_at"] for a in listed["recent"] if a["id"] == raised[0]["id"]] != [None]
    assert len([a for a in hook_lines(breached) if a["rule"] == "ttft_p95"]) == 1


def test_alerts_toml_with_credentials_is_refused_nothing_written(
        shared_server: SharedServer) -> None:
    lab = shared_server.lab
    config = lab / "alerts.toml"
    config.write_text('command = ["curl", "--data-binary", "@-", '
                      '"https://ops:hunter2@hooks.example.com/alert"]\n')
    try:
        with sqlite3.connect(lab / "lab.db") as db:
            before = db.execute("select count(*) from events").fetchone()[0]
        done = llmops(lab, "alert", "watch", "--once", "--json", check=2)
        error = json.loads(done.stdout)["error"]
        assert error.startswith("alerts.toml: command: command[3] holds"), error
        assert "command_env" in error
        with sqlite3.connect(lab / "lab.db") as db:
            assert db.execute("select count(*) from events").fetchone()[0] == before
    finally:
        config.unlink()
