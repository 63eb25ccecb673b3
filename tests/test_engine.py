"""The action engine on a real lab (git + SQLite) with the real host `local`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from labtools import git_log, local_spec
from realparts import assert_probe_matches_machine

from llmops.ops.kinds.base import SpecError
from llmops.rollback.engine import ActionRefused, Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.lock import LabBusy


@pytest.fixture
def engine(tmp_path: Path):
    lab = Lab(tmp_path / "lab")
    eng = Engine(lab, lock_wait=0.5)
    yield eng
    eng.close()
    lab.close()


def test_add_commits_journals_and_probes(engine: Engine, tmp_path: Path) -> None:
    record = engine.act([Change("host", "local", local_spec(tmp_path))], "host local added")
    assert record.status == "succeeded"
    assert [s.verb for s in record.steps] == ["probe"]
    assert record.checks and record.checks_passed
    assert git_log(engine.lab.path)[0] == "action 1: host local added"
    assert (engine.lab.path / "hosts/local.toml").exists()
    facts = engine.lab.journal.observed("host", "local")
    assert facts
    assert_probe_matches_machine(facts)  # cores and GPUs as this machine has them


def test_lab_is_private(engine: Engine, tmp_path: Path) -> None:
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    assert (engine.lab.path.stat().st_mode & 0o777) == 0o700
    for f in ("hosts/local.toml", "lab.db"):
        assert ((engine.lab.path / f).stat().st_mode & 0o777) == 0o600, f


def test_failing_reconcile_reverts(engine: Engine, tmp_path: Path) -> None:
    bad = local_spec(tmp_path, name="broken", python="/nonexistent/python3")
    record = engine.act([Change("host", "broken", bad)], "host broken added")
    assert record.status == "failed, reverted"
    assert "probe" in (record.error or "") or "nonexistent" in (record.error or "")
    assert not (engine.lab.path / "hosts/broken.toml").exists()
    log = git_log(engine.lab.path)
    assert log[0].startswith("action 1 reverted") and log[1] == "action 1: host broken added"
    assert engine.lab.journal.observed("host", "broken") is None


def test_rollback_of_add_and_of_remove_and_of_rollback(engine: Engine, tmp_path: Path) -> None:
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    removed = engine.act([Change("host", "local", None)], "remove")
    assert removed.status == "succeeded"
    assert engine.lab.read_spec("host", "local") is None

    back = engine.rollback(removed.id)  # the host comes back, probed and validated
    assert back.status == "succeeded" and back.kind == "rollback" and back.rollback_of == 2
    assert engine.lab.read_spec("host", "local") == local_spec(tmp_path)
    assert back.seconds is not None and back.seconds < 60
    assert {c.name for c in back.checks} >= {"reachable"}
    assert engine.lab.journal.action(removed.id).display_status == "rolled back"

    again = engine.rollback(back.id)  # rollback of a rollback: removed again
    assert again.status == "succeeded"
    assert engine.lab.read_spec("host", "local") is None

    with pytest.raises(ActionRefused, match="nothing to roll back: host local is absent"):
        engine.rollback(1)  # rollback of the add: absent already, the reconcile would do nothing
    assert engine.lab.read_spec("host", "local") is None


def test_rollback_of_reverted_action_is_refused(engine: Engine, tmp_path: Path) -> None:
    engine.act([Change("host", "broken", local_spec(tmp_path, name="broken", python="/no"))], "x")
    with pytest.raises(ActionRefused, match="already reverted"):
        engine.rollback(1)


def test_last_good(engine: Engine, tmp_path: Path) -> None:
    good = local_spec(tmp_path)
    engine.act([Change("host", "local", good)], "add")
    engine.act(
        [Change("host", "local", local_spec(tmp_path, workdir=str(tmp_path / "w2")))], "move"
    )
    engine.act([Change("host", "local", None)], "remove")
    record = engine.rollback_last_good("host", "local")
    assert record.status == "succeeded"
    assert engine.lab.read_spec("host", "local") == local_spec(
        tmp_path, workdir=str(tmp_path / "w2")
    )


def test_bad_input_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    head = engine.lab.head()
    with pytest.raises(SpecError, match="key"):
        engine.act(
            [
                Change(
                    "host",
                    "r1",
                    local_spec(
                        tmp_path, name="r1", local=False, address="10.213.250.2", key="/no/such/key"
                    ),
                )
            ],
            "x",
        )
    with pytest.raises(SpecError, match="no host named"):
        engine.act([Change("host", "ghost", None)], "remove ghost")
    assert engine.lab.head() == head
    assert engine.lab.journal.events() == []


def test_no_op_is_refused(engine: Engine, tmp_path: Path) -> None:
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    with pytest.raises(ActionRefused, match="nothing to change"):
        engine.act([Change("host", "local", local_spec(tmp_path))], "add again")


def test_lock_contention_names_the_holder(engine: Engine, tmp_path: Path) -> None:
    import os

    with engine.lab.lock.hold("the test"), pytest.raises(LabBusy, match=f"pid {os.getpid()}"):
        engine.act([Change("host", "local", local_spec(tmp_path))], "add")


def test_hash_chain_detects_an_edited_row(engine: Engine, tmp_path: Path) -> None:
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    assert engine.lab.journal.verify() == []
    conn = sqlite3.connect(engine.lab.path / "lab.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("update events set data = '{}' where seq = 1")
    conn.execute("drop trigger events_no_update")  # what a tamperer would have to do
    conn.execute("""update events set data = replace(data, '"add"', '"innocent"') where seq = 1""")
    conn.commit()
    conn.close()
    problems = engine.lab.journal.verify()
    assert problems and "row 1" in problems[0] and "altered" in problems[0]


def test_host_removal_refused_while_used(engine: Engine, tmp_path: Path) -> None:
    from llmops.ops.kinds.base import Context
    from llmops.ops.kinds.host import HostKind
    from llmops.ops.kinds.server import ServerSpec
    from llmops.rollback.kinds import admit_dependencies

    uses = ServerSpec(name="s1", host="local", model="org/m")
    ctx = Context({("server", "s1"): uses}, lambda k, n: None)
    with pytest.raises(SpecError, match="still used by server s1"):
        admit_dependencies(HostKind(), ("host", "local"), None, ctx)
