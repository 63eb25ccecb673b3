"""A resource kind for engine tests: one detached `sleep` on a real host, cheap to start.

It proves engine properties (a revert that cannot reach its host, a revert left broken) in
seconds where a vLLM server takes a minute; tests/test_server_drop.py runs the same story
with a real server. Registered only by the tests that use it (`sleeper_kind` below).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from labtools import local_spec

from llmops.ops import procs
from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Check, Kind, Observed, Progress, Ref, Spec, Step
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.records import ActionRecord


class SleeperSpec(Spec):
    """`sleep SECONDS` on a host. `hold`: a local file the start waits for (the action stays
    open, polling the host, until the test creates it); `poison`: a file a failing start
    leaves behind, which every checklist then reports (a resource left broken)."""

    host: str
    seconds: int = 600
    hold: str | None = None
    poison: str | None = None
    fail_start: bool = False


def proc_name(spec: SleeperSpec) -> str:
    return f"sleeper-{spec.name}"


class SleeperObserved(Observed):
    running: bool = False
    argv: list[str] = []


class SleeperKind(Kind[SleeperSpec, SleeperObserved]):
    name: ClassVar[str] = "sleeper"
    folder: ClassVar[str] = "sleepers"
    Spec: ClassVar[type[Spec]] = SleeperSpec
    order: ClassVar[int] = 60

    def depends_on(self, spec: SleeperSpec) -> dict[str, Ref]:
        return {"host": ("host", spec.host)}

    def owns_process(self, spec: SleeperSpec, name: str) -> bool:
        return name == proc_name(spec)

    def observe(self, spec: SleeperSpec, hosts: HostPool) -> SleeperObserved:
        info = procs.status(hosts.transport(spec.host), proc_name(spec))
        return SleeperObserved(running=info.running, argv=list(info.argv or []))

    def plan(
        self, desired: SleeperSpec | None, current: SleeperSpec | None, observed: SleeperObserved
    ) -> list[Step]:
        running = observed.running
        if desired is None:
            return [Step("stop", "stop the sleep")] if running else []
        if running and observed.argv == ["sleep", str(desired.seconds)]:
            return []
        steps = [Step("stop", "stop the old sleep")] if running else []
        return [*steps, Step("start", f"sleep {desired.seconds}")]

    def apply(
        self, step: Step, spec: SleeperSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        assert spec is not None
        t = hosts.transport(spec.host)
        if step.verb == "stop":
            procs.stop(t, proc_name(spec), grace=2)
            return {}
        if spec.fail_start:
            if spec.poison:
                Path(spec.poison).write_text("left behind by a failed start")
            raise RuntimeError(f"sleeper {spec.name} refuses to start")
        procs.start(t, proc_name(spec), ["sleep", str(spec.seconds)])
        while spec.hold and not Path(spec.hold).exists():
            procs.status(t, proc_name(spec))  # reaches the host: fails when it went away
            time.sleep(0.1)
        return {}

    def validate(self, spec: SleeperSpec, hosts: HostPool) -> list[Check]:
        running = procs.status(hosts.transport(spec.host), proc_name(spec)).running
        checks = [Check("running", running, "sleeping" if running else "not running")]
        if spec.poison:
            poisoned = Path(spec.poison).exists()
            checks.append(Check("clean", not poisoned, "poisoned" if poisoned else "no poison"))
        return checks

    def validate_absent(self, spec: SleeperSpec, hosts: HostPool) -> list[Check]:
        running = procs.status(hosts.transport(spec.host), proc_name(spec)).running
        return [Check("stopped", not running, "still running" if running else "gone")]


@pytest.fixture
def sleeper_kind(monkeypatch: pytest.MonkeyPatch) -> SleeperKind:
    """The sleeper kind in the registry for one test."""
    kind = SleeperKind()
    monkeypatch.setitem(KINDS, kind.name, kind)
    return kind


def fail_with_poison(engine: Engine, tmp_path: Path) -> tuple[SleeperSpec, ActionRecord]:
    """Host `local`, sleeper z9 up, then a change whose failed start leaves poison behind:
    the revert runs and restarts z9, but its checklist fails. Stop z9 when done."""
    engine.act([Change("host", "local", local_spec(tmp_path))], "add")
    good = SleeperSpec(name="z9", host="local", poison=str(tmp_path / "poison"))
    assert engine.act([Change("sleeper", "z9", good)], "up").status == "succeeded"
    bad = good.model_copy(update={"seconds": 700, "fail_start": True})
    return good, engine.act([Change("sleeper", "z9", bad)], "change")
