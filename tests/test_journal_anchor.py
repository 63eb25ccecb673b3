"""The journal's anchors in git: tampering the chain alone cannot show, and a lost lab.db.

Each case does what a tamperer with write access to lab.db would: drop the triggers, change
rows, and recompute every hash after the change so the chain itself is intact again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from labtools import git_log, llmops, local_spec
from test_console_support import SIZE, close_app_lab, opened, wait_for

from llmops.console.app import LlmopsApp
from llmops.console.cli import cli
from llmops.rollback import anchors
from llmops.rollback.engine import Change, Engine
from llmops.rollback.journal import GENESIS, event_hash
from llmops.rollback.lab import Lab


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A lab with three actions: host local added, host gpu-2 added, that rolled back."""
    lab = Lab(tmp_path / "lab")
    eng = Engine(lab, lock_wait=0.5)
    assert eng.act([Change("host", "local", local_spec(tmp_path))], "add local").status == (
        "succeeded"
    )
    added = eng.act([Change("host", "gpu-2", local_spec(tmp_path, "gpu-2"))], "add gpu-2")
    assert eng.rollback(added.id).status == "succeeded"
    yield eng
    eng.close()
    lab.close()


def rewrite(lab: Path, change: Callable[[sqlite3.Connection], None]) -> None:
    """Drop the triggers, change rows, then renumber and re-hash the whole chain."""
    conn = sqlite3.connect(lab / "lab.db")
    conn.execute("drop trigger events_no_update")
    conn.execute("drop trigger events_no_delete")
    change(conn)
    rows = conn.execute(
        "select action_id, at, event, data from events order by seq"
    ).fetchall()
    conn.execute("delete from events")
    prev = GENESIS
    for seq, (action_id, at, event, data) in enumerate(rows, start=1):
        digest = event_hash(seq, action_id, at, event, data, prev)
        conn.execute(
            "insert into events values (?, ?, ?, ?, ?, ?, ?)",
            [seq, action_id, at, event, data, prev, digest],
        )
        prev = digest
    conn.commit()
    conn.close()


def verify_cli(lab: Path) -> tuple[int, str]:
    """`llmops history --verify` in process: exit code and output."""
    done = CliRunner().invoke(cli, ["--lab", str(lab), "history", "--verify"])
    return done.exit_code, done.output


def last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("select max(seq) from events").fetchone()[0])


TAMPERINGS: dict[str, tuple[Callable[[sqlite3.Connection], None], str]] = {
    # a row in the middle edited (what action 2 did), every later hash recomputed
    "edited": (
        lambda c: c.execute(
            """update events set data = replace(data, 'add gpu-2', 'innocent')
               where action_id = 2 and event = 'started'"""
        ),
        "is not the row commit",
    ),
    # the newest action's outcome edited (after its commit's anchor): the tail ref holds it
    "edited-outcome": (
        lambda c: c.execute(
            "update events set data = '{\"seconds\": 0.001}' where seq = ?", [last_seq(c)]
        ),
        f"is not the row {anchors.TAIL_REF} anchored",
    ),
    "cut-off-the-end": (
        lambda c: c.execute("delete from events where seq > ?", [last_seq(c) - 2]),
        "rows were cut off the end",
    ),
    "newest-action-deleted": (
        lambda c: c.execute("delete from events where action_id = 3"),
        "action 3 is in git",
    ),
    "middle-action-deleted": (
        lambda c: c.execute("delete from events where action_id = 2"),
        "action 2 is in git",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERINGS))
def test_verify_catches_a_recomputed_chain(engine: Engine, case: str) -> None:
    lab = engine.lab.path
    assert engine.lab.verify() == []
    assert verify_cli(lab)[0] == 0
    change, expected = TAMPERINGS[case]
    rewrite(lab, change)
    assert engine.lab.journal.verify() == []  # the chain alone is intact again
    problems = engine.lab.verify()
    assert any(expected in p for p in problems), problems
    code, output = verify_cli(lab)  # it recovers first: a cut action becomes "interrupted"
    assert code == 1 and "✗" in output, output


def test_each_action_commit_anchors_its_started_row(engine: Engine) -> None:
    journal, repo = engine.lab.journal, engine.lab.repo
    found, _ = anchors.commit_anchors(repo)
    assert [a.action_id for a in found] == [1, 2, 3]
    for anchor in found:
        started = next(e for e in journal.events(anchor.action_id) if e.event == "started")
        assert (anchor.seq, anchor.hash) == (started.seq, started.hash)
    tail = anchors.read_tail(repo)
    newest = journal.head()
    assert tail is not None and newest is not None
    assert (tail.action_id, tail.seq, tail.hash) == (3, newest.seq, newest.hash)


def test_lost_journal_warns_fails_verify_and_numbers_go_on(engine: Engine, tmp_path: Path) -> None:
    lab = engine.lab.path
    engine.close()
    engine.lab.close()
    for name in ("lab.db", "lab.db-wal", "lab.db-shm"):
        (lab / name).unlink(missing_ok=True)

    shown = llmops(lab, "history")  # rebuilt from git (tests/test_lab_corruption.py), told
    assert "git holds actions 1 to 3: rebuilt 3 from git" in shown.stderr, shown.stderr
    verify = llmops(lab, "history", "--verify", check=1)  # the real CLI's exit code
    assert "rebuilt from git after lab.db was lost" in verify.stdout
    assert "the journal was rewritten or replaced" in verify.stdout

    reopened = Lab(lab)
    again = Engine(reopened, lock_wait=0.5)
    try:
        record = again.act([Change("host", "gpu-3", local_spec(tmp_path, "gpu-3"))], "add gpu-3")
        assert record.id == 4 and record.status == "succeeded"
        subjects = [s for s in git_log(lab) if s.startswith("action ")]
        numbers = [s.split(":")[0] for s in subjects]
        assert len(numbers) == len(set(numbers)), subjects  # never two "action 1:" commits
        assert any("not the row commit" in p for p in reopened.verify())
    finally:
        again.close()
        reopened.close()


async def test_history_view_warns_of_a_lost_journal(engine: Engine) -> None:
    lab = engine.lab.path
    engine.close()
    engine.lab.close()
    (lab / "lab.db").unlink()
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot)

        def toasts() -> str:
            return " ".join(str(t.render()) for t in app.screen.query("Toast"))

        await wait_for(pilot, lambda: "journal" in toasts(), what="the warning")
        assert "git holds actions up to 3" in toasts()
        close_app_lab(app)


def test_numbers_continue_after_the_highest_in_an_older_lab(tmp_path: Path) -> None:
    """Commits from before anchors name their action in the subject; numbers restarted once."""
    lab = Lab(tmp_path / "lab")
    try:
        for number, name in ((1, "a"), (5, "b"), (2, "c")):
            rel = lab.write_spec("host", name, local_spec(tmp_path, name))
            lab.commit(f"action {number}: host {name} added", [rel])
        assert lab.next_action_id() == 6 and lab.journal_gap() == 5
    finally:
        lab.close()


def test_commits_outside_actions_carry_no_anchor(engine: Engine, tmp_path: Path) -> None:
    lab = engine.lab
    rel = lab.write_spec("host", "hand", local_spec(tmp_path, "hand"))
    sha = lab.commit("hand edit: host hand", [rel])
    assert anchors.anchor_of(sha, lab.repo.commit(sha).message) is None
    assert lab.verify() == []
