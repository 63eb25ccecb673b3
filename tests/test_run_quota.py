"""An ended run lets the GPU quota go: a real tiny peft run on host `local` trains to done,
`llmops run list` (the real CLI) records its state for its config in the journal's facts, and
the policy's quota, which refused a second run on the same GPUs while the first had no ended
state recorded, admits it.

This box has no GPU, and on a CPU host a run holds no GPU at all, so the quota is asked with
the host's own recorded probe plus one GPU (`with_gpu`): the admission reads everything else
from the lab as the engine does (the desired specs, the run's recorded state). The real CLI
shows the same thing on the CPU host: `policy show` lists the ended run as idle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labtools import llmops_json
from test_run_kind import cfg_folder, engine, rows, run_spec  # noqa: F401 - fixtures

from llmops.ops.kinds.base import Context
from llmops.rollback.engine import Change, Engine
from llmops.rollback.policy import Policy, refusals

GPU = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 * 2**30,
       "memory_used_bytes": 0, "utilization_percent": 0}


def quota_says(engine: Engine, change: Change) -> list[str]:  # noqa: F811 - the fixture's name
    """The policy's refusals of `change`, admitted as the engine admits it, on a host whose
    recorded probe is given one GPU."""
    journal = engine.lab.journal

    def with_gpu(kind: str, name: str) -> dict[str, Any] | None:
        found = journal.observed(kind, name)
        return {**(found or {}), "gpus": [GPU]} if kind == "host" else found

    context = Context(engine.context([change]).desired, with_gpu)
    return [f"{r.field}: {r.message}" for r in refusals(Policy(), [change], context)]


def test_an_ended_run_lets_the_quota_admit_the_next(engine: Engine, rows: Path) -> None:  # noqa: F811
    first = run_spec(rows, "a")
    record = engine.act([Change("run", "a", first)], "run a")
    assert record.status == "succeeded", record.error
    second = Change("run", "b", run_spec(rows, "b", seed=2))
    held = ["gpus: GPU [0] of local is already used by run/a",
            "gpus: jobs on local would use 2 GPUs; its probe reports 1"]
    assert quota_says(engine, second) == held  # nothing recorded yet: it holds every GPU

    result = cfg_folder(engine, first) / "result.json"  # the trainer's last write
    deadline = time.monotonic() + 300
    while not result.exists():
        assert time.monotonic() < deadline, "run a never finished"
        time.sleep(0.5)
    lab = engine.lab.path
    deadline = time.monotonic() + 120  # the trainer exits a moment after its last write
    while (rows_now := {r["name"]: r for r in llmops_json(lab, "run", "list")})["a"][
            "state"] in ("training", "screening") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rows_now["a"]["state"] == "done", rows_now
    recorded = engine.lab.journal.observed("run", "a") or {}
    assert (recorded.get("state"), recorded.get("cfg")) == ("done", first.cfg_hash()), recorded

    assert quota_says(engine, second) == []  # admitted: the ended run holds nothing
    jobs = llmops_json(lab, "policy", "show")["hosts"]["local"]["jobs"]
    assert jobs["run/a"]["idle"] is True, jobs
