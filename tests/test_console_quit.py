"""`q` while an action of this console runs: the process could not end before the action's
thread did (minutes of a frozen screen on a vLLM start), so the console asks, and closes
when the action ends; with nothing running it quits at once."""

from __future__ import annotations

from pathlib import Path

from test_console_support import SIZE, lab_with, local_host, on_screen, opened, shown_text, wait_for
from testkinds import SleeperKind, SleeperSpec, sleeper_kind

from llmops.console.app import LlmopsApp
from llmops.console.screens.acting import start_action
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.rollback.engine import Change

__all__ = ["sleeper_kind"]  # the fixture, used by name


async def test_quit_waits_for_its_action_and_says_so(tmp_path: Path,
                                                     sleeper_kind: SleeperKind) -> None:
    hold = tmp_path / "release"
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        assert app.context is not None and app.main is not None
        spec = SleeperSpec(name="z", host="local", hold=str(hold))
        start_action(app.main, app.context.engine, [Change("sleeper", "z", spec)], "sleeper z")
        await wait_for(pilot, lambda: app.own_action() is not None, what="the action's lock")
        await pilot.press("q")
        confirm = await on_screen(pilot, ConfirmScreen)
        body = shown_text(confirm.query_one("#confirm-body"))
        assert "cannot close before it ends" in body and "llmops rollback N" in body
        await pilot.press("q")  # again, on the dialog: no second dialog
        assert len([s for s in app.screen_stack if isinstance(s, ConfirmScreen)]) == 1
        await pilot.press("n")  # stay: nothing changes
        await on_screen(pilot, MainScreen)
        await pilot.press("q")
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause(1.0)
        assert app.is_running and app.quitting  # still here, waiting for the action
        hold.write_text("go")  # the start's wait ends: the action finishes, then the console
        await wait_for(pilot, lambda: not app.is_running, what="the console closing")
    record = app.context.engine.lab.journal.actions(limit=1)[-1]
    assert record.summary == "sleeper z" and record.status == "succeeded"  # not interrupted
    engine = app.context.engine
    assert engine.rollback(record.id).ok  # the sleep stops
    engine.close()
    engine.lab.close()


async def test_quit_with_nothing_running_is_at_once(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the console closing")
    assert app.context is not None
    app.context.lab.close()


async def test_ctrl_c_says_which_key_quits_in_plain_words(tmp_path: Path) -> None:
    """ctrl+c does not quit a Textual app; its toast said `Press [b]ctrl+q[/b] to quit the
    app`, brackets and all, since every toast here is plain text."""
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)
        await pilot.press("ctrl+c")
        def toasts() -> str:
            return " ".join(str(t.render()) for t in app.screen.query("Toast"))

        await wait_for(pilot, lambda: "quit" in toasts(), what="a toast")
        shown = toasts()
        assert "Press q (or ctrl+q) to quit" in shown and "[b]" not in shown
        assert app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the console closing")
    assert app.context is not None
    app.context.lab.close()
