"""Reverts the engine cannot take for granted: one whose host dropped off mid-action (a real
namespace sshd killed with its connections), and one that ran but left the resource broken."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshhosts import SshHost, SshHostFactory, descendants
from test_procs import alive, wait_for
from testkinds import SleeperKind, SleeperSpec, fail_with_poison, sleeper_kind

from llmops.ops import procs
from llmops.ops.kinds.base import SpecError
from llmops.rollback.engine import ActionRefused, Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.pending import PENDING_STATE
from llmops.rollback.records import ActionRecord

__all__ = ["sleeper_kind"]  # the fixture, used by name
REF = ("sleeper", "z9")


@pytest.fixture
def lab_path(tmp_path: Path) -> Path:
    return tmp_path / "lab"


def open_engine(path: Path) -> Engine:
    return Engine(Lab(path), lock_wait=2.0)


@pytest.fixture
def engine(lab_path: Path, sleeper_kind: SleeperKind) -> Iterator[Engine]:
    eng = open_engine(lab_path)
    yield eng
    eng.close()
    eng.lab.close()


def sleeper_pid(host: SshHost, name: str = "z9") -> int | None:
    """The pid procctl recorded (the namespace shares this machine's files and pids)."""
    record = host.workdir / "run" / f"sleeper-{name}" / "proc.json"
    return json.loads(record.read_text())["pid"] if record.exists() else None


def detached(host: SshHost, pid: int | None) -> bool:
    """The process runs and its starter has let it go: it is no longer among sshd's
    descendants, which `host.kill()` kills with sshd (a real drop would leave it alone)."""
    return alive(pid) and host.sshd_pid is not None and pid not in descendants(host.sshd_pid)


def drop_mid_action(engine: Engine, host: SshHost, spec: SleeperSpec) -> ActionRecord:
    """Run `sleeper up` in a thread; once its sleep runs on the host, kill sshd and every
    connection it serves (as if the host went away), and return the action's record."""
    done: dict[str, ActionRecord] = {}
    thread = threading.Thread(
        target=lambda: done.update(record=engine.act([Change(*REF, spec)], "sleeper z9 up"))
    )
    thread.start()
    wait_for(lambda: detached(host, sleeper_pid(host)), 30)
    host.kill()
    thread.join(60)
    return done["record"]


@pytest.fixture
def dropped(
    engine: Engine, ssh_host_factory: SshHostFactory, tmp_path: Path
) -> Iterator[tuple[SshHost, ActionRecord]]:
    """A host `g…` whose connection dropped mid-action: sshd is back up when the test runs."""
    host = ssh_host_factory()
    engine.act(
        [Change("host", host.name, host.spec())],
        "add",
        trust={host.name: host.host_pub_fingerprint},
    )
    spec = SleeperSpec(name="z9", host=host.name, hold=str(tmp_path / "never"))
    record = drop_mid_action(engine, host, spec)
    assert record.status == "failed", record
    assert "cannot reach" in (record.revert_error or "")
    assert engine.lab.read_spec(*REF) is None  # git is back as it was before
    assert alive(sleeper_pid(host))  # ...but what the action started still runs
    yield host, record
    if host.sshd_pid is None:
        host.start()
    pid = sleeper_pid(host)
    if alive(pid):
        procs.stop(engine.hosts.transport(host.name), "sleeper-z9", grace=1)


def test_a_revert_that_cannot_reach_the_host_stays_pending(
    engine: Engine, dropped: tuple[SshHost, ActionRecord], lab_path: Path
) -> None:
    host, record = dropped
    pending = engine.pending.get(REF)
    assert pending is not None and pending.action_id == record.id and pending.host == host.name
    assert "cannot reach" in pending.error and PENDING_STATE in pending.describe()
    failed = [e for e in engine.lab.journal.events(record.id) if e.event == "failed"]
    assert failed[0].data["pending"] == ["sleeper/z9"]

    assert engine.settle() == []  # the host is still down: nothing finished, nothing lost
    with pytest.raises(SpecError, match="revert pending"):
        engine.act([Change("host", host.name, None)], "remove the host under it")

    host.start()
    later = open_engine(lab_path)  # a restart of the console or the next CLI call
    try:
        assert later.pending.get(REF) is not None
        owners = {p.name: who for p, who in later.host_processes(host.name)}
        assert owners["sleeper-z9"] == f"sleeper/z9 ({PENDING_STATE})"
        finished = later.settle()  # what `llmops plan` does first
    finally:
        later.close()
        later.lab.close()
    assert [(a.status, a.rollback_of) for a in finished] == [("succeeded", record.id)]
    assert [s.verb for s in finished[0].steps] == ["stop"]
    assert [(c.name, c.ok) for c in finished[0].checks] == [("stopped", True)]
    assert not alive(sleeper_pid(host))
    assert engine.pending.get(REF) is None

    with pytest.raises(ActionRefused, match="nothing to roll back"):
        engine.rollback(record.id)


def test_rollback_of_the_dropped_action_finishes_its_revert(
    engine: Engine, dropped: tuple[SshHost, ActionRecord]
) -> None:
    host, record = dropped
    host.start()
    back = engine.rollback(record.id)
    assert back.status == "succeeded" and [s.verb for s in back.steps] == ["stop"]
    assert back.checks and back.checks_passed
    assert not alive(sleeper_pid(host)) and engine.pending.get(REF) is None


def test_the_next_action_on_the_host_finishes_the_revert(
    engine: Engine, dropped: tuple[SshHost, ActionRecord]
) -> None:
    host, record = dropped
    host.start()
    t = engine.hosts.transport(host.name)
    procs.start(t, "stray", ["sleep", "600"])  # llmops started it; no spec claims it
    try:
        assert [p.name for p in engine.unclaimed(host.name)] == ["stray"]
        other = engine.act([Change("sleeper", "y1", SleeperSpec(name="y1", host=host.name))], "y1")
        assert other.status == "succeeded"
        assert engine.pending.get(REF) is None and not alive(sleeper_pid(host))
        finish = engine.lab.journal.action(other.id - 1)
        assert finish is not None and finish.rollback_of == record.id
        assert finish.summary.startswith(f"finish the revert of action {record.id}")
        owners = {p.name: who for p, who in engine.host_processes(host.name) if p.running}
        assert owners == {"stray": None, "sleeper-y1": "sleeper/y1"}
    finally:
        procs.stop(t, "stray", grace=1)
        procs.stop(t, "sleeper-y1", grace=1)


def test_a_revert_whose_checklist_fails_is_unverified(engine: Engine, tmp_path: Path) -> None:
    good, record = fail_with_poison(engine, tmp_path)
    try:
        assert record.status == "failed, revert unverified"
        assert record.revert_error is None and engine.lab.read_spec(*REF) == good
        revert = [(c.name, c.ok) for c in record.checks if c.phase == "revert"]
        assert revert == [("running", True), ("clean", False)]
        assert [s.verb for s in record.steps if s.phase == "revert"] == ["start"]
        Path(good.poison or "").unlink()
        clean = engine.act([Change(*REF, good.model_copy(update={"seconds": 650}))], "again")
        assert clean.status == "succeeded"
        bad = good.model_copy(update={"seconds": 700, "fail_start": True, "poison": None})
        fine = engine.act([Change(*REF, bad)], "fails")
        assert fine.status == "failed, reverted"  # the revert's checklist passed
        assert any(c.phase == "revert" for c in fine.checks)
    finally:
        procs.stop(engine.hosts.transport("local"), "sleeper-z9", grace=1)
