"""The run in a word and a row (Summarizes): what `run list` prints and the Runs view reads,
from the processes and cfg folders observed on the host and the latest telemetry sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Sample
from llmops.ops.kinds.run.apply import observe
from llmops.ops.kinds.run.observed import RunObserved
from llmops.ops.kinds.run.spec import RunSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

STATES = ("screening", "training", "done", "stopped", "interrupted", "failed", "absent")


def run_state(spec: RunSpec, observed: RunObserved) -> str:
    """One word: training or screening while a process works; else what the current cfg's
    folder says: done, stopped (asked to), failed (an error record or a non-zero exit),
    interrupted (killed or the host rebooted mid-way: the next reconcile resumes it), or
    absent (nothing on the host yet)."""
    if observed.proc.running:
        return "training"
    if observed.screen.running:
        return "screening"
    cfg = observed.current or spec.cfg_hash()
    found = observed.cfgs.get(cfg)
    if found is None:
        return "stopped" if spec.state == "stopped" and observed.cfgs else "absent"
    if found.done:
        return "done"
    exit_code = observed.proc.exit_code
    if found.last_event == "error" or (exit_code is not None and exit_code > 0):
        return "failed"
    if found.last_event == "stopped" or spec.state == "stopped":
        return "stopped"
    if found.last_event is None and observed.proc.state in (None, "missing"):
        return "failed" if observed.screen.exit_code not in (0, None) else "absent"
    return "interrupted"


def status(spec: RunSpec, hosts: HostPool, answering: bool | None = None) -> str:
    """Observed now (the data files are not hashed: a poll must stay cheap)."""
    return run_state(spec, observe(spec, hosts, hash_data=False))


def state_facts(spec: RunSpec, state: str) -> dict[str, Any] | None:
    """`{"state", "cfg"}` for a word observed on the host; None for anything else (not
    polled, unreachable, a pending revert): those say nothing of the trainer."""
    if state not in STATES:
        return None
    return {"state": state, "cfg": spec.cfg_hash()}


def sha_of_sample(value: float | None) -> str | None:
    """The adapter sha's first 12 hex digits, as the sampler carries them (a number)."""
    return None if value is None else f"{int(value):012x}"


def summary(spec: RunSpec, state: str, latest: Sample | None) -> dict[str, Any]:
    """The row: the spec's main fields, the state, and the latest telemetry (when any)."""
    row: dict[str, Any] = {
        "name": spec.name,
        "host": spec.host,
        "base": spec.base,
        "dataset": spec.dataset,
        "state": state,
        "cfg": spec.cfg_hash(),
        "step": None,
        "max_steps": spec.max_steps,
        "loss": None,
        "eval_loss": None,
        "tokens_per_s": None,
        "eta_s": None,
        "adapter": None,
    }
    if latest is not None:
        row.update(
            step=_int(latest.get("step")),
            max_steps=_int(latest.get("max_steps")) or spec.max_steps,
            loss=latest.get("loss"),
            eval_loss=latest.get("eval_loss"),
            tokens_per_s=latest.get("tokens_per_s"),
            eta_s=latest.get("eta_s"),
            adapter=sha_of_sample(latest.get("adapter_sha48")),
        )
    return row


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
