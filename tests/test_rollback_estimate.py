"""The rollback preview's time guess (Undo.expected_seconds) follows what the undo repeats,
not the forward action's own time: undoing a creation only stops it, undoing a removal starts
the resource again, and a journalled rollback of the action is the best guess of all. Real
engine, real git and SQLite, the sleeper kind on host `local` (its start held open by a file)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from labtools import local_spec
from testkinds import SleeperKind, SleeperSpec, sleeper_kind

from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

__all__ = ["sleeper_kind"]  # the fixture, used by name
HELD = 2.0  # seconds the creation's start is held open


def release_later(hold: Path) -> None:
    threading.Timer(HELD, hold.touch).start()


def test_the_guess_is_what_the_undo_repeats(tmp_path: Path, sleeper_kind: SleeperKind) -> None:
    engine = Engine(Lab(tmp_path / "lab"), lock_wait=2.0)
    try:
        engine.act([Change("host", "local", local_spec(tmp_path))], "add")
        hold = tmp_path / "hold"
        spec = SleeperSpec(name="z", host="local", hold=str(hold))
        release_later(hold)
        made = engine.act([Change("sleeper", "z", spec)], "z up")
        assert made.status == "succeeded" and made.seconds is not None
        assert made.seconds >= HELD, made.seconds
        # undoing the creation stops z: not the seconds its start took
        assert engine.preview_rollback(made.id).expected_seconds == 5.0
        gone = engine.act([Change("sleeper", "z", None)], "z down")
        assert gone.status == "succeeded" and gone.seconds is not None
        # undoing the removal starts z again: as long as making it took, not the quick stop
        assert engine.preview_rollback(gone.id).expected_seconds == made.seconds
        hold.unlink()
        release_later(hold)
        began = time.monotonic()
        back = engine.rollback(gone.id)
        assert back.status == "succeeded" and time.monotonic() - began >= HELD
        # once a rollback of it is journalled, that is the guess
        assert engine.preview_rollback(gone.id).expected_seconds == back.seconds
    finally:
        if engine.lab.read_spec("sleeper", "z") is not None:
            engine.act([Change("sleeper", "z", None)], "z down")
        engine.close()
        engine.lab.close()
