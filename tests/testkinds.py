"""A resource kind for engine tests: one detached `sleep` on a real host, cheap to start.

It proves engine properties (a revert that cannot reach its host, a revert left broken) in
seconds where a vLLM server takes a minute; tests/test_server_drop.py runs the same story
with a real server. Registered only by the tests that use it (`sleeper_kind` below).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from labtools import local_spec

from llmops.ops import procs
from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Check, Kind, Observed, Progress, Ref, Sample, Spec, Step
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


# --- a kind doing long work in steps: progress records, a report, a log ----------------------

TICKER = r"""
import json, os, sys, time
out, steps, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
done = 0
if os.path.exists(out):
    for line in open(out):
        record = json.loads(line)
        if record.get("event") == "log":
            done = record["step"]
report = {"rows_in": 12, "rows_out": 11, "train_rows": 10, "eval_rows": 1, "rules": {
    "secret": {"rows": 1, "action": "drop", "examples": ["api_key=[REDACTED]"]},
    "email": {"rows": 2, "action": "redact", "examples": ["write to [EMAIL]"]},
    "injection": {"rows": 0, "action": "drop", "examples": []}}}
with open(out + ".report.json", "w") as f:
    json.dump(report, f)
with open(out, "a") as f:
    def put(**record):
        f.write(json.dumps({"at": time.time(), **record}) + "\n")
        f.flush()
    put(event="start", max_steps=steps, resumed_from=done or None)
    for step in range(done + 1, steps + 1):
        time.sleep(every)
        put(event="log", step=step, max_steps=steps, epoch=step / steps,
            loss=2.0 / (1 + 0.1 * step), tokens_per_s=100.0, eta_s=(steps - step) * every)
        print(f"step {step}/{steps}", flush=True)
        if step % 4 == 0:
            put(event="eval", step=step, eval_loss=2.2 / (1 + 0.08 * step))
    put(event="done", step=steps, tokens_per_s=100.0)
"""


class TickerSpec(Spec):
    """A process on a host that counts `steps` steps, one every `every` seconds, writing
    progress records to `out` (a local path) and a screening-like report beside it; stopped,
    it resumes after the last step it wrote, as a trainer resumes from a checkpoint."""

    host: str
    out: str
    steps: int = 40
    every: float = 0.25
    state: Literal["running", "stopped"] = "running"


class TickerObserved(Observed):
    running: bool = False
    finished: bool = False


def ticker_proc(spec: TickerSpec) -> str:
    return f"ticker-{spec.name}"


def ticker_records(path: str) -> list[dict[str, Any]]:
    found = Path(path)
    if not found.exists():
        return []
    return [json.loads(line) for line in found.read_text().splitlines() if line.strip()]


class TickerKind(Kind[TickerSpec, TickerObserved]):
    """Long work in steps with a log, a state, progress records and a report (HasLogs,
    Summarizes, HasProgress, HasReport), cheap enough for console tests."""

    name: ClassVar[str] = "ticker"
    folder: ClassVar[str] = "tickers"
    Spec: ClassVar[type[Spec]] = TickerSpec
    order: ClassVar[int] = 70

    def depends_on(self, spec: TickerSpec) -> dict[str, Ref]:
        return {"host": ("host", spec.host)}

    def owns_process(self, spec: TickerSpec, name: str) -> bool:
        return name == ticker_proc(spec)

    def observe(self, spec: TickerSpec, hosts: HostPool) -> TickerObserved:
        info = procs.status(hosts.transport(spec.host), ticker_proc(spec))
        finished = any(r.get("event") == "done" for r in ticker_records(spec.out))
        return TickerObserved(running=info.running, finished=finished)

    def plan(self, desired: TickerSpec | None, current: TickerSpec | None,
             observed: TickerObserved) -> list[Step]:
        if desired is None or desired.state == "stopped":
            return [Step("stop", "stop counting")] if observed.running else []
        if observed.running or observed.finished:
            return []
        return [Step("start", f"count to {desired.steps}")]

    def apply(self, step: Step, spec: TickerSpec | None, hosts: HostPool,
              progress: Progress) -> dict[str, Any]:
        assert spec is not None
        t = hosts.transport(spec.host)
        if step.verb == "stop":
            procs.stop(t, ticker_proc(spec), grace=2)
        else:
            procs.start(t, ticker_proc(spec), [sys.executable, "-c", TICKER, spec.out,
                                               str(spec.steps), str(spec.every)])
        return {}

    def logs(self, spec: Spec, hosts: HostPool, lines: int = 100) -> list[str]:
        assert isinstance(spec, TickerSpec)
        return procs.tail(hosts.transport(spec.host), ticker_proc(spec), lines)

    def status(self, spec: Spec, hosts: HostPool, answering: bool | None = None) -> str:
        assert isinstance(spec, TickerSpec)
        observed = self.observe(spec, hosts)
        return "training" if observed.running else "done" if observed.finished else "stopped"

    def summary(self, spec: Spec, status: str, latest: Sample | None) -> dict[str, Any]:
        return {"name": spec.name, "state": status}

    def progress_points(self, spec: Spec, hosts: HostPool) -> list[dict[str, Any]]:
        assert isinstance(spec, TickerSpec)
        return ticker_records(spec.out)

    def report(self, spec: Spec, hosts: HostPool) -> dict[str, Any] | None:
        assert isinstance(spec, TickerSpec)
        found = Path(spec.out + ".report.json")
        return json.loads(found.read_text()) if found.exists() else None


@pytest.fixture
def ticker_kind(monkeypatch: pytest.MonkeyPatch) -> TickerKind:
    """The ticker kind in the registry for one test."""
    kind = TickerKind()
    monkeypatch.setitem(KINDS, kind.name, kind)
    return kind
