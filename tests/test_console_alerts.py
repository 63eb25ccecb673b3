"""The console's alerts (issue 12 item 5), driven with Pilot on the session's shared CPU vLLM
server: the Servers view's telemetry poll runs each sample through the alert rules, and a TTFT
target set impossibly low raises a notification naming the breach; the operator's command ran
once for it. A read-only console notifies too, and writes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sharedserver import SharedServer
from test_alert_server import HOOK, Traffic, hook_lines, reset_alert_state, set_target, write_config
from test_console_support import SIZE, close_app_lab, opened, wait_for

from llmops.console.app import LlmopsApp

pytestmark = [pytest.mark.vllm]


def toasts(app: LlmopsApp) -> str:
    return " ".join(str(t.render()) for t in app.screen.query("Toast"))


def counts(lab: Path) -> tuple[int, int]:
    """(journal rows, alert rows)."""
    with sqlite3.connect(lab / "lab.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        alerts = db.execute("select count(*) from alerts").fetchone()[0] if (
            "alerts" in tables) else 0
        return db.execute("select count(*) from events").fetchone()[0], alerts


@pytest.fixture
def breached(shared_server: SharedServer, tmp_path: Path) -> Iterator[Path]:
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


async def see_alert(app: LlmopsApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: "TTFT p95" in toasts(app), 90, "the alert's notification")
        shown = toasts(app)
        assert "server shared: TTFT p95" in shown and "over target 0.001 ms" in shown, shown
        close_app_lab(app)


async def test_a_breach_is_notified_and_its_command_runs_once(
        shared_server: SharedServer, breached: Path) -> None:
    with Traffic(shared_server.port):
        await see_alert(LlmopsApp(shared_server.lab))
    ran: list[dict[str, Any]] = [a for a in hook_lines(breached) if a["rule"] == "ttft_p95"]
    assert len(ran) == 1 and ran[0]["alert"] == "raised", ran


async def test_a_read_only_console_notifies_and_writes_nothing(
        shared_server: SharedServer, breached: Path) -> None:
    before = counts(shared_server.lab)
    with Traffic(shared_server.port):
        await see_alert(LlmopsApp(shared_server.lab, read_only=True))
    assert counts(shared_server.lab)[1] == before[1]  # no alert row
    assert counts(shared_server.lab)[0] == before[0]  # no journal row
    assert not [a for a in hook_lines(breached) if a["rule"] == "ttft_p95"]
