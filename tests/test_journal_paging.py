"""A long journal: history shows the newest page and folds only the actions it shows; the
History view pages older actions in; a rollback preview reads only the actions it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from labtools import local_spec
from test_console_support import SIZE, close_app_lab, history_view, opened, wait_for

from llmops.console.app import LlmopsApp
from llmops.console.cli import cli
from llmops.console.widgets.table import ResourceTable
from llmops.rollback import journal as journal_module
from llmops.rollback.engine import Change, Engine
from llmops.rollback.journal import Journal
from llmops.rollback.lab import Lab


def synthetic(path: Path, count: int, first: int = 1, *, rollback_last: bool = False,
              running: int | None = None) -> None:
    """`count` finished actions on hosts h0..h6 written straight through the journal API."""
    lab = Lab(path)
    head = lab.head()
    lab.close()
    journal = Journal(path / "lab.db")
    journal.db.execute("PRAGMA synchronous=OFF")  # a test journal: speed over durability
    for i in range(first, first + count):
        rollback_of = i - 1 if rollback_last and i == first + count - 1 else None
        journal.append(i, "started", {
            "kind": "rollback" if rollback_of else "apply", "summary": f"synthetic {i}",
            "who": "test", "refs": [["host", f"h{i % 7}"]], "before_commit": head,
            "rollback_of": rollback_of, "specs": {}})
        journal.append(i, "committed", {"commit": head})
        if i == running:
            continue
        journal.append(i, "step", {"ref": f"host/h{i % 7}", "verb": "probe", "ok": True,
                                   "seconds": 0.1, "detail": "", "phase": "apply"})
        journal.append(i, "succeeded", {"after_commit": head, "seconds": 0.2})
    journal.close()


def history_json(lab: Path, *args: str) -> Any:
    done = CliRunner().invoke(cli, ["--lab", str(lab), "history", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.fixture
def loads_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many journal rows were parsed (every folded row is json-loaded once)."""
    seen = [0]
    real = json.loads

    def counting(text: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return real(text, **kwargs)

    monkeypatch.setattr(journal_module.json, "loads", counting)
    return seen


def test_history_shows_the_newest_page(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    synthetic(lab, 60)
    assert [a["id"] for a in history_json(lab)] == list(range(11, 61))  # default: newest 50
    assert [a["id"] for a in history_json(lab, "--limit", "5")] == list(range(56, 61))
    assert len(history_json(lab, "--all")) == 60
    assert [a["id"] for a in history_json(lab, "--since", "58")] == [58, 59, 60]
    every = history_json(lab, "--all")
    when = every[57]["started_at"]  # action 58's (an action or two may share its millisecond)
    since = [a["id"] for a in every if a["started_at"] >= when]
    assert [a["id"] for a in history_json(lab, "--since", when)] == since
    assert since[-3:] == [58, 59, 60] and len(since) < 10
    shown = CliRunner().invoke(cli, ["--lab", str(lab), "history", "--limit", "2"])
    assert "2 of 60 actions shown" in shown.output
    bad = CliRunner().invoke(cli, ["--lab", str(lab), "history", "--since", "soon"])
    assert bad.exit_code == 2 and "neither an action number nor a date" in bad.output


def test_only_the_shown_actions_are_folded(tmp_path: Path, loads_counted: list[int]) -> None:
    synthetic(tmp_path / "lab", 300, rollback_last=True, running=150)
    journal = Journal(tmp_path / "lab" / "lab.db")
    try:
        loads_counted[0] = 0
        page = journal.actions(limit=5)
        assert [a.id for a in page] == [296, 297, 298, 299, 300]
        assert page[-2].display_status == "rolled back"  # its rollback is on the page too
        assert loads_counted[0] == 5 * 4
        assert [a.id for a in journal.unfinished()] == [150]
        loads_counted[0] = 0
        one = journal.action(299)
        assert one is not None and one.rolled_back_by == 300 and loads_counted[0] == 2 * 4
    finally:
        journal.close()


def test_rollback_preview_reads_only_what_it_needs(tmp_path: Path,
                                                   loads_counted: list[int]) -> None:
    path = tmp_path / "lab"
    lab = Lab(path)
    engine = Engine(lab, lock_wait=0.5)
    try:
        first = engine.act([Change("host", "local", local_spec(tmp_path))], "add local")
        engine.close()
        lab.close()
        synthetic(path, 300, first=first.id + 1)  # on hosts h0..h6, not on `local`
        lab = Lab(path)
        engine = Engine(lab, lock_wait=0.5)
        loads_counted[0] = 0
        preview = engine.preview_rollback(first.id)
        assert preview.action.id == first.id and preview.later_actions == []
        assert loads_counted[0] <= 4 * len(lab.journal.events(first.id))
    finally:
        engine.close()
        lab.close()


async def test_history_view_pages_older_actions_in(tmp_path: Path) -> None:
    synthetic(tmp_path / "lab", 230)
    app = LlmopsApp(tmp_path / "lab")
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("6")
        view = history_view(app)
        table = view.query_one(ResourceTable)
        await wait_for(pilot, lambda: table.row_count == 200, what="the newest page")
        assert min(view.actions) == 31 and table.selected_key == "230"
        assert view.check_action("older", ()) is True
        await pilot.press("o")
        await wait_for(pilot, lambda: table.row_count == 230, what="the older actions")
        assert view.check_action("older", ()) is None
        close_app_lab(app)
