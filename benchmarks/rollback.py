"""Rollback against a cold start, measured in one run on the tiny model on host `local`.

    .venv/bin/python benchmarks/rollback.py [--keep DIR]

Through the engine, as the CLI and console run it: a fresh lab, host `local` (this python),
the tests' tiny model; then a recreate server goes up (the cold start), changes
max_model_len and is rolled back; a blue-green server does the same. Each time is read from
the journal. Targets (issue 5): recreate rollback <= 1.3x cold start, blue-green <= 0.1x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.journal import ActionRecord
from llmops.rollback.lab import Lab

COLD_STEPS = ("start", "wait-ready", "smoke")
"""A cold start is the kind's start of a fresh server: process started -> healthy -> serving."""


def ok(record: ActionRecord) -> ActionRecord:
    if record.status != "succeeded" or not record.checks_passed:
        failed = [c for c in record.checks if not c["ok"]]
        raise SystemExit(f"action {record.id} {record.summary}: {record.status} "
                         f"{record.error or ''} {failed}")
    return record


def step_seconds(record: ActionRecord, verbs: tuple[str, ...]) -> float:
    return sum(float(s["seconds"]) for s in record.steps if s["verb"] in verbs)


def walk(engine: Engine, spec: ServerSpec) -> tuple[ActionRecord, ActionRecord, ActionRecord]:
    """Up, change max_model_len, roll the change back, down: the three records that count."""
    up = ok(engine.act([Change("server", spec.name, spec)], f"server {spec.name} up"))
    changed = spec.model_copy(update={"max_model_len": 128})
    change = ok(engine.act([Change("server", spec.name, changed)], f"server {spec.name} changed"))
    back = ok(engine.rollback(change.id))
    ok(engine.act([Change("server", spec.name, None)], f"server {spec.name} down"))
    return up, change, back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Use (and keep) this folder, not a temp one.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    lab = Lab(root / "lab")
    engine = Engine(lab)
    try:
        host = HostSpec(name="local", local=True, python=sys.executable,
                        workdir=str(root / "work"))
        ok_host = engine.act([Change("host", "local", host)], "host local added")
        assert ok_host.status == "succeeded", ok_host.error
        model = root / "tiny-model"
        source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
        engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
        common = {"host": "local", "model": str(model), "dtype": "float32",
                  "max_model_len": 256, "cpu_kvcache_gib": 1}
        began = time.monotonic()
        up, change, recreate = walk(engine, ServerSpec(name="rc", port=18401, **common))
        _, bg_change, bluegreen = walk(engine, ServerSpec(
            name="bg", port=18411, strategy="blue-green", **common))
        wall = time.monotonic() - began
    finally:
        engine.close()
        lab.close()
    cold = step_seconds(up, COLD_STEPS)
    rows = [
        ("cold start (start -> healthy -> a completion)", cold),
        ("  the whole `server up` action, checklist included", up.seconds or 0.0),
        ("recreate change (max_model_len 256 -> 128)", change.seconds or 0.0),
        ("recreate rollback (whole action, checklist included)", recreate.seconds or 0.0),
        ("blue-green change", bg_change.seconds or 0.0),
        ("blue-green rollback (whole action, checklist included)", bluegreen.seconds or 0.0),
        ("  of which the switch itself", step_seconds(bluegreen, ("switch",))),
    ]
    print(f"tiny model on host local ({root}), {wall:.0f}s in all")
    for what, seconds in rows:
        print(f"{what:56s} {seconds:7.2f} s  {seconds / cold:5.2f}x cold")
    print(f"recreate rollback / cold start:   {(recreate.seconds or 0) / cold:.2f}x"
          f"  (target <= 1.3x)  {'OK' if (recreate.seconds or 0) <= 1.3 * cold else 'MISSED'}")
    print(f"blue-green rollback / cold start: {(bluegreen.seconds or 0) / cold:.3f}x"
          f" (target <= 0.1x)  {'OK' if (bluegreen.seconds or 0) <= 0.1 * cold else 'MISSED'}")


if __name__ == "__main__":
    main()
