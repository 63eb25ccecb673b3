"""A host that rebooted under llmops (issue 13 item 3): every llmops process on it gone at once,
its run records left behind, stale, and a pid of theirs now held by another program, as a
reboot hands pids out again. A rollback still converges, its checklist passes, and the other
program is never signalled. Cheap, with the test kind's detached `sleep` on host `local`;
tests/test_server_cli.py::test_rollback_after_a_host_reboot_converges runs the same story
with a real vLLM server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import local_spec
from test_procs import alive, wait_for
from testkinds import SleeperKind, SleeperSpec, sleeper_kind

from llmops.ops import procs
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

__all__ = ["sleeper_kind"]  # the fixture, used by name


@pytest.fixture
def engine(tmp_path: Path, sleeper_kind: SleeperKind) -> Iterator[Engine]:
    eng = Engine(Lab(tmp_path / "lab"), lock_wait=2.0)
    assert eng.act([Change("host", "local", local_spec(tmp_path))], "add").status == "succeeded"
    yield eng
    procs.stop(eng.hosts.transport("local"), "sleeper-z1", grace=1)
    eng.close()
    eng.lab.close()


@pytest.fixture
def other_program() -> Iterator[subprocess.Popen[bytes]]:
    """A program that is none of llmops's business: its own session, as a daemon's."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def reboot(workdir: Path, reused_by: int) -> Path:
    """Kill every session the host's run records name (SIGKILL, no exit status written) and
    hand the first record's pid to `reused_by`, as the next boot may; returns that record."""
    records = sorted((workdir / "run").glob("*/proc.json"))
    for record in records:
        data = json.loads(record.read_text())
        try:
            os.killpg(data["sid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for(lambda data=data: not alive(data["pid"]), 10)
    data = json.loads(records[0].read_text())
    record = records[0]
    record.write_text(json.dumps(data | {"pid": reused_by, "sid": reused_by}))
    return record


def test_stop_leaves_a_reused_pid_alone(
    tmp_path: Path, engine: Engine, other_program: subprocess.Popen[bytes]
) -> None:
    t = engine.hosts.transport("local")
    procs.start(t, "sleeper-z1", ["sleep", "600"])
    reboot(Path(local_spec(tmp_path).workdir), other_program.pid)
    assert procs.status(t, "sleeper-z1").state == "reused"
    assert procs.stop(t, "sleeper-z1", grace=1).state == "reused"
    assert other_program.poll() is None  # never signalled


def test_rollback_after_a_reboot_converges(
    tmp_path: Path, engine: Engine, other_program: subprocess.Popen[bytes]
) -> None:
    up = engine.act([Change("sleeper", "z1", SleeperSpec(name="z1", host="local"))], "z1 up")
    changed = engine.act([Change("sleeper", "z1", SleeperSpec(name="z1", host="local",
                                                              seconds=700))], "z1 700")
    assert up.status == changed.status == "succeeded"
    record = reboot(Path(local_spec(tmp_path).workdir), other_program.pid)
    assert record.parent.name == "sleeper-z1"

    back = engine.rollback(changed.id)
    assert back.status == "succeeded", back.error
    assert back.checks and back.checks_passed, [(c.name, c.detail) for c in back.checks]
    now = procs.status(engine.hosts.transport("local"), "sleeper-z1")
    assert now.state == "running" and now.pid != other_program.pid
    assert now.argv == ["sleep", "600"]  # the before-state of the rolled-back change
    assert other_program.poll() is None  # the stale record's pid was never signalled
