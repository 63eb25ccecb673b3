"""A planned stop is no crash: while an action on a server is in flight (unfinished in the
journal, the lab lock held) a sample that does not answer never counts toward the crash
alert; the same samples with no action in flight raise it. Seen in CI: a console edit that
recreated the server raised "does not answer (crashed or stopped)" mid-recreate."""

from __future__ import annotations

import time
from pathlib import Path

from llmops.ops.kinds.base import Sample
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

SPEC = ServerSpec(name="tiny", host="local", model="/models/tiny", port=18990)
CRASHED = "crashed (rc -15)"


def down_samples(engine: Engine, count: int) -> list[str]:
    """Feed `count` samples of a server that does not answer; the transitions they caused."""
    events = []
    for _ in range(count):
        sample = Sample("server/tiny", time.time(), up=False)
        events += engine.observe_alerts(SPEC, sample, CRASHED)
    return [f"{e.transition} {e.rule}" for e in events]


def test_a_server_stopped_by_an_action_in_flight_raises_no_crash(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    engine = Engine(lab)
    try:
        action_id = lab.next_action_id()
        lab.journal.append(action_id, "started", {"kind": "apply", "summary": "tiny edited",
                                                  "refs": [["server", "tiny"]]})
        with lab.lock.hold("a recreate of tiny"):
            assert engine.changing("server/tiny") and not engine.changing("server/other")
            assert down_samples(engine, 5) == []
        # the action's process died without an outcome: unfinished, but nobody holds the lock
        assert not engine.changing("server/tiny")
        assert down_samples(engine, 3) == ["raised crash"]
    finally:
        engine.close()
        lab.close()
