"""Lab corruption (issue 13, item 4): lab.db deleted, cut short or emptied is rebuilt from
git's commits with a clear warning (and `--verify` keeps naming the lost rows); a hand-edited
TOML file with a syntax error is refused by every reader, naming the file and the line, with
nothing applied; an edited journal row is named by `history --verify`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from labtools import git_log, llmops, llmops_json, local_spec

from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab with three actions: host a1 added (later rolled back), host b1 added but its
    probe failed (reverted), and the rollback of the first. Tests work on copies."""
    root = tmp_path_factory.mktemp("corrupt")
    broken = root / "broken-python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    lab = Lab(root / "lab")
    engine = Engine(lab, lock_wait=1)
    try:
        assert engine.act([Change("host", "a1", local_spec(root, "a1"))], "host a1 added").ok
        failed = engine.act(
            [Change("host", "b1", local_spec(root, "b1", python=str(broken)))], "host b1 added")
        assert failed.status == "failed, reverted", failed
        assert engine.rollback(1).ok
    finally:
        engine.close()
        lab.close()
    return root / "lab"


@pytest.fixture
def lab(made: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "lab"
    shutil.copytree(made, copy)
    return copy


def git_status(lab: Path) -> str:
    return subprocess.run(["git", "-C", str(lab), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout


def cut_in_half(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def emptied(db: Path) -> None:
    db.write_bytes(b"")


def deleted(db: Path) -> None:
    db.unlink()


@pytest.mark.parametrize("damage", [deleted, cut_in_half, emptied], ids=lambda f: f.__name__)
def test_a_lost_journal_is_rebuilt_from_git_with_a_warning(
    lab: Path, damage: Callable[[Path], None]
) -> None:
    for name in ("lab.db-wal", "lab.db-shm"):
        (lab / name).unlink(missing_ok=True)
    if damage is cut_in_half:  # fold the WAL in first, so the cut is into the rows themselves
        sqlite3.connect(lab / "lab.db").execute("vacuum").connection.close()
    damage(lab / "lab.db")

    shown = llmops(lab, "history", "--json")
    assert "rebuilt 3 from git" in shown.stderr, shown.stderr
    if damage is cut_in_half:
        assert "lab.db was unreadable" in shown.stderr and "kept as lab.db-damaged-" in shown.stderr
        assert list(lab.glob("lab.db-damaged-*"))
    assert git_status(lab) == ""  # the damaged file is kept, out of git's way
    actions = {a["id"]: a for a in json.loads(shown.stdout)}
    assert [actions[i]["summary"] for i in (1, 2, 3)] == [
        "host a1 added", "host b1 added", "rollback of action 1"]
    assert actions[1]["status"] == "succeeded" and actions[1]["rolled_back_by"] == 3
    assert actions[2]["status"] == "failed, reverted" and actions[2]["refs"] == [["host", "b1"]]
    assert actions[3]["rollback_of"] == 1 and actions[3]["kind"] == "rollback"
    assert all(a["who"] == "unknown (rebuilt from git)" for a in actions.values())

    again = llmops(lab, "history", "--json")  # a later call: still told, not rebuilt twice
    assert "rebuilt from git after lab.db was lost" in again.stderr
    assert len(json.loads(again.stdout)) == 3
    verify = llmops(lab, "history", "--verify", check=1)
    assert "rebuilt from git" in verify.stdout

    llmops(lab, "host", "add", "c1", "--local", "--python", sys.executable, "--workdir",
           str(lab.parent / "w-c1"))
    numbers = [s.split(":")[0] for s in git_log(lab) if s.startswith("action ")]
    assert numbers[0] == "action 4" and len(numbers) == len(set(numbers))


BROKEN_TOML = 'local = true\npython = "/usr/bin/python3\nworkdir = "/tmp/x"\n'


def test_a_toml_syntax_error_is_refused_by_every_reader_naming_file_and_line(lab: Path) -> None:
    (lab / "hosts").mkdir(exist_ok=True)
    (lab / "hosts" / "hand.toml").write_text(BROKEN_TOML)
    log = git_log(lab)
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    for args in (("plan",), ("apply",), ("host", "list"), ("host", "show", "hand"),
                 ("host", "add", "d1", "--local", "--python", sys.executable)):
        answer = llmops_json(lab, *args, check=2)
        assert "hosts/hand.toml" in answer["error"] and "line 2" in answer["error"], (
            args, answer)
    assert git_log(lab) == log
    count = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()
    assert count[0] == rows
    assert not (lab / "hosts" / "d1.toml").exists()


def test_an_edited_row_is_named_by_verify(lab: Path) -> None:
    conn = sqlite3.connect(lab / "lab.db")
    conn.execute("drop trigger events_no_update")
    seq = conn.execute(
        "select seq from events where action_id = 2 and event = 'started'").fetchone()[0]
    conn.execute("update events set data = replace(data, 'b1', 'zz') where seq = ?", (seq,))
    conn.commit()
    conn.close()
    answer = llmops_json(lab, "history", "--verify", check=1)
    assert f"row {seq} (action 2, started) was altered" in answer["problems"]
    text = llmops(lab, "history", "--verify", check=1).stdout
    assert f"row {seq} (action 2, started) was altered" in text
