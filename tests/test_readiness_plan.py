"""The readiness line before a change expects the rollback time of what the change's plan
runs: a change that restarts nothing (a server's targets) is not given the minutes past
restarting rollbacks took. Real engine, git and SQLite, the sleeper kind on host `local`
(its start held open by a file, so a restart is measurably slower than no restart)."""

from __future__ import annotations

import threading
from pathlib import Path

from labtools import local_spec
from testkinds import SleeperKind, SleeperSpec, sleeper_kind

from llmops.console.cli.common import expected_text
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

__all__ = ["sleeper_kind"]  # the fixture, used by name
HELD = 2.0  # seconds a start is held open


def held(hold: Path) -> None:
    """The next start waits HELD seconds for the hold file."""
    hold.unlink(missing_ok=True)
    threading.Timer(HELD, hold.touch).start()


def test_expected_time_follows_the_plan(tmp_path: Path, sleeper_kind: SleeperKind) -> None:
    engine = Engine(Lab(tmp_path / "lab"), lock_wait=2.0)
    try:
        engine.act([Change("host", "local", local_spec(tmp_path))], "add")
        hold = tmp_path / "hold"
        hold.touch()
        z = SleeperSpec(name="z", host="local", hold=str(hold))
        assert engine.act([Change("sleeper", "z", z)], "z up").ok
        # a restart and its rollback, which restarts too (held HELD s)
        longer = z.model_copy(update={"seconds": 601})
        held(hold)
        changed = engine.act([Change("sleeper", "z", longer)], "z longer")
        assert changed.ok
        held(hold)
        back = engine.rollback(changed.id)
        assert back.ok and back.seconds is not None and back.seconds >= HELD, back
        assert sorted({s.verb for s in back.steps}) == ["start", "stop"]

        # the hold file is read by a start only: this change's plan runs no step
        quiet = z.model_copy(update={"hold": str(tmp_path / "other")})
        [ready] = engine.readiness_for([Change("sleeper", "z", quiet)])
        assert ready.ready and ready.steps == []
        assert ready.expected_seconds is None and ready.samples == 0  # the restart is no guide
        line = expected_text(ready)
        assert "restarts nothing" in line and "no such rollback journalled yet" in line, line
        # a restarting change is expected to take what the restarting rollback took
        [ready] = engine.readiness_for([Change("sleeper", "z", longer)])
        assert ready.steps == ["start", "stop"]
        assert ready.expected_seconds == back.seconds and ready.samples == 1
        assert expected_text(ready) == (f"~{back.seconds:.1f}s (p50 of 1 rollbacks that ran"
                                        " start, stop)")

        # once a rollback that ran no step is journalled, it is the guess for a quiet change
        done = engine.act([Change("sleeper", "z", quiet)], "z quiet")
        assert done.ok and done.steps == []
        undone = engine.rollback(done.id)
        assert undone.ok and undone.steps == [] and undone.seconds is not None
        [ready] = engine.readiness_for([Change("sleeper", "z", quiet)])
        assert ready.expected_seconds == undone.seconds and ready.samples == 1
        assert ready.expected_seconds < back.seconds
        assert expected_text(ready).startswith(
            f"~{undone.seconds:.1f}s (p50 of 1 rollbacks that ran no step): this change"
            " restarts nothing")
        # a drill's check plans nothing: every rollback of the kind, as before
        check = engine.readiness("sleeper", "z")
        assert check.steps is None and check.samples == 2
    finally:
        if engine.lab.read_spec("sleeper", "z") is not None:
            engine.act([Change("sleeper", "z", None)], "z down")
        engine.close()
        engine.lab.close()
