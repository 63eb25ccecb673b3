"""The run's telemetry (HasTelemetry): the tail of the current cfg's progress.jsonl, read on
the host each poll (one small script, no tunnel): step, progress, loss, eval loss, tokens/s,
ETA. The rollback layer polls and stores it like any kind's, keyed `run/NAME`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.base import Metric
from llmops.ops.kinds.run import layout
from llmops.ops.kinds.run.hostcalls import hostread
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

METRICS = (
    Metric("progress", "progress", "{:.0%}"),
    Metric("step", "step", "{:.0f}"),
    Metric("loss", "loss", "{:.3f}"),
    Metric("eval_loss", "eval loss", "{:.3f}"),
    Metric("tokens_per_s", "tok/s"),
    Metric("eta_s", "ETA s", "{:.0f}"),
)
Values = dict[str, float | None]


def values_of(tail: dict[str, object]) -> Values:
    """hostread's `tail` answer -> the sample's numbers. The adapter's sha travels as its
    first 12 hex digits read as a number (samples hold numbers; the row shows it again)."""

    def num(key: str) -> float | None:
        value = tail.get(key)
        return float(value) if isinstance(value, int | float) else None

    step, max_steps = num("step"), num("max_steps")
    values: Values = {
        "step": step,
        "max_steps": max_steps,
        "progress": min(1.0, step / max_steps) if step is not None and max_steps else None,
        "loss": num("loss"),
        "eval_loss": num("eval_loss"),
        "tokens_per_s": num("tokens_per_s"),
        "eta_s": num("eta_s"),
    }
    sha = tail.get("adapter_sha256")
    if isinstance(sha, str) and len(sha) >= 12:
        values["adapter_sha48"] = float(int(sha[:12], 16))
        values["progress"] = 1.0
    return values


class RunSampler:
    """One run's sampler: nothing is held between polls but the host's pooled connection."""

    def __init__(self, spec: RunSpec, hosts: HostPool) -> None:
        self.spec, self.hosts = spec, hosts

    def sample(self) -> Values | None:
        try:
            facts = self.hosts.facts(self.spec.host)
            t = self.hosts.transport(self.spec.host)
            workdir = (facts or {}).get("workdir") or t.workdir
            tail = hostread(t, "tail", layout.run_dir({"workdir": workdir}, self.spec.name))
        except (TransportError, OSError, ValueError):
            return None
        return values_of(tail)

    def close(self) -> None:
        """Nothing to release."""
