"""A handful of SVG snapshots, for layout only (they churn with every style change: update
them with `pytest tests/test_console_snapshots.py --snapshot-update` and look at the diff).

The lab sits at a fixed path so the header reads the same on every machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_console_support import on_screen

from llmops.console.app import LlmopsApp
from llmops.console.screens.main import MainScreen
from llmops.console.screens.welcome import WelcomeScreen

SNAPSHOT_LAB = Path("/tmp/llmops-snapshot-lab")
SIZE = (100, 30)


@pytest.fixture
def empty_lab() -> Path:
    shutil.rmtree(SNAPSHOT_LAB, ignore_errors=True)
    yield SNAPSHOT_LAB
    shutil.rmtree(SNAPSHOT_LAB, ignore_errors=True)


def test_welcome_on_an_empty_lab(snap_compare, empty_lab: Path) -> None:
    assert snap_compare(LlmopsApp(empty_lab), terminal_size=SIZE)


def test_empty_runs_view_says_how_to_start(snap_compare, empty_lab: Path) -> None:
    async def to_runs(pilot) -> None:
        await on_screen(pilot, WelcomeScreen)  # the lab opens in a worker, then welcomes
        await pilot.press("escape")  # skip the welcome
        await on_screen(pilot, MainScreen)
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(LlmopsApp(empty_lab), terminal_size=SIZE, run_before=to_runs)
