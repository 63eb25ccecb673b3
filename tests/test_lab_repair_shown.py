"""A lab.db lost and rebuilt from git when the lab opens: every way in says so (the CLI on
stderr, the console as a warning toast), whichever command happened to open it first."""

from __future__ import annotations

from pathlib import Path

from labtools import llmops
from test_console_support import SIZE, close_app_lab, lab_with, local_host, opened, wait_for

from llmops.console.app import LlmopsApp


def lost_journal(tmp_path: Path) -> Path:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path))  # one action: host local added
    (lab / "lab.db").unlink()
    return lab


def test_the_cli_warns_that_the_journal_was_rebuilt(tmp_path: Path) -> None:
    lab = lost_journal(tmp_path)
    done = llmops(lab, "host", "list")
    assert "warning:" in done.stderr and "rebuilt" in done.stderr, done.stderr
    again = llmops(lab, "host", "list")
    assert "rebuilt" not in again.stderr  # said once, by the opening that repaired it


async def test_the_console_warns_that_the_journal_was_rebuilt(tmp_path: Path) -> None:
    app = LlmopsApp(lost_journal(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: any(
            n.title == "the lab was repaired" and "rebuilt" in n.message
            for n in app._notifications), what="the repair toast")
        assert [n.severity for n in app._notifications if n.title == "the lab was repaired"] \
            == ["warning"]
        close_app_lab(app)
