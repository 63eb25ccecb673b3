"""What an operator reads of a revert: "failed, revert unverified" with the checks that failed
(CLI output, the console's History), and the processes llmops started that no spec claims
(the console's Hosts detail)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_console_support import (
    SIZE,
    close_app_lab,
    history_view,
    hosts_view,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from testkinds import fail_with_poison, sleeper_kind

from llmops.console.app import LlmopsApp
from llmops.console.cli.common import report_action
from llmops.console.screens.host_detail import HostDetailScreen
from llmops.console.widgets.table import ResourceTable
from llmops.ops import procs
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

__all__ = ["sleeper_kind"]  # the fixture, used by name


@pytest.fixture
def lab_path(tmp_path: Path, sleeper_kind: object) -> Path:
    """A lab whose action 3 failed and was reverted, but the revert's checklist failed."""
    engine = Engine(Lab(tmp_path / "lab"))
    try:
        _good, record = fail_with_poison(engine, tmp_path)
        assert record.status == "failed, revert unverified"
        procs.stop(engine.hosts.transport("local"), "sleeper-z9", grace=1)
    finally:
        engine.close()
        engine.lab.close()
    return tmp_path / "lab"


def test_cli_says_revert_unverified_with_the_failed_check(
    lab_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = Lab(lab_path)
    record = lab.journal.action(3)
    lab.close()
    assert record is not None
    with pytest.raises(SystemExit) as exit_code:
        report_action(record, as_json=False)
    said = " ".join(capsys.readouterr().out.split())
    assert exit_code.value.code == 1
    assert "failed, revert unverified" in said
    assert "✗ revert: check sleeper/z9 clean: poisoned" in said
    assert "✓ revert: check sleeper/z9 running" in said


async def test_console_history_and_hosts_detail(lab_path: Path, tmp_path: Path) -> None:
    app = LlmopsApp(lab_path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        assert app.context is not None
        t = app.context.engine.hosts.transport("local")
        procs.start(t, "stray", ["sleep", "600"])  # llmops started it; no spec claims it
        try:
            await pilot.press("6")
            table = history_view(app).query_one(ResourceTable)
            await wait_for(pilot, lambda: table.row_count == 3, what="three actions")
            assert "failed, revert unverified" in " ".join(map(str, table.get_row("3")))
            await pilot.press("1")
            view = hosts_view(app)
            await wait_for(pilot, lambda: "local" in view.rows, what="host local listed")
            view.query_one(ResourceTable).select_key("local")
            await pilot.press("enter")
            detail = await on_screen(pilot, HostDetailScreen)
            await wait_for(pilot, lambda: "stray" in shown_text(detail.query_one("#procs")),
                           what="the process list")
            rows = shown_text(detail.query_one("#procs"))
            assert "no spec" in rows and "sleeper/z9" in rows  # z9 (exited) is claimed
        finally:
            procs.stop(t, "stray", grace=1)
            close_app_lab(app)
