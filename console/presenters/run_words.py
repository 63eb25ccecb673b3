"""A run's progress and screening report in words: pure, and free of Textual, so the CLI
(`llmops run show`/`list`) prints them without loading the console's widgets (each CLI call
would pay for that import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from llmops.ops.kinds.base import Sample

REPORT_RULES = ("injection", "secret", "email", "phone", "card")


@dataclass
class RunNow:
    """A run as its newest progress records (and telemetry) say: what its row shows."""

    step: int | None = None
    max_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    ended: str | None = None
    """done, stopped or error: how the trainer's last pass ended (None: still going)."""

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.max_steps:
            return None
        return min(1.0, self.step / self.max_steps)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_now(points: Sequence[dict[str, Any]], sample: Sample | None = None) -> RunNow:
    """Pure: fold the progress records, oldest first, into the run's latest numbers; a value
    no record holds comes from the telemetry sample (when it answered)."""
    now = RunNow()
    for p in points:
        event = p.get("event")
        if event in ("start", "log", "eval", "done", "stopped", "checkpoint"):
            now.ended = None if event == "start" else now.ended
            if (steps := _number(p.get("max_steps"))) is not None:
                now.max_steps = int(steps)
            if (step := _number(p.get("step"))) is not None:
                now.step = int(step)
        if event == "log":
            for name in ("epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s", "eta_s"):
                if (value := _number(p.get(name))) is not None:
                    setattr(now, name, value)
        elif event == "eval" and (value := _number(p.get("eval_loss"))) is not None:
            now.eval_loss = value
        elif event in ("done", "stopped", "error"):
            now.ended = str(event)
            if event == "done":
                now.eta_s = 0.0
                if (tps := _number(p.get("tokens_per_s"))) is not None:
                    now.tokens_per_s = tps
    if sample is not None and sample.up:
        for name in ("loss", "eval_loss", "tokens_per_s", "eta_s"):
            if getattr(now, name) is None:
                setattr(now, name, sample.get(name))
        if now.step is None and (step := sample.get("step")) is not None:
            now.step = int(step)
    return now


def eta_text(seconds: float | None) -> str:
    """`45s`, `12m05s`, `3h20m`; `-` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def screening_text(report: dict[str, Any] | None, width: int = 60) -> Text | None:
    """A run's screening report: rows in and out, then per rule that found rows how many and
    what was done with them, with one (already redacted) example; the rules that found
    nothing on one line."""
    if not report:
        return None
    text = Text()
    text.append("screening ", style="bold")
    text.append(f"{report.get('rows_in', '?')} rows in → {report.get('rows_out', '?')} kept")
    if report.get("train_rows") is not None:
        text.append(f" (train {report['train_rows']}, eval {report.get('eval_rows', 0)})",
                    style="grey50")
    rules = report.get("rules") or {}
    clean = []
    for rule in [*REPORT_RULES, *sorted(set(rules) - set(REPORT_RULES))]:
        found = rules.get(rule)
        if found is None:
            continue
        rows, action = found.get("rows", 0), str(found.get("action", "?"))
        if not rows:
            clean.append(rule)
            continue
        text.append(f"\n  {rule:<10}", style="bold")
        text.append(f"{rows:>5} row{' ' if rows == 1 else 's'}  ", style="bold yellow")
        text.append(action, style="red" if action == "drop" else "")
        if examples := found.get("examples") or []:
            example = " ".join(str(examples[0]).split())
            cut = width - 9
            text.append(f"\n    e.g. {example[:cut] + '…' if len(example) > cut else example}",
                        style="grey62")
    if clean:
        text.append(f"\n  nothing found: {', '.join(clean)}", style="grey50")
    return text


STATE_READINGS: dict[tuple[str, str], str] = {
    ("running", "training"): "as desired",
    ("running", "screening"): "as desired (screening the data before training)",
    ("running", "done"): "the trainer finished: `running` asks to train until done, so there is"
                         " nothing left to do",
    ("running", "failed"): "the trainer failed: `llmops run logs NAME` says why",
    ("running", "interrupted"): "the trainer was killed mid-way (the next reconcile resumes it"
                                " from its newest checkpoint)",
    ("running", "stopped"): "the trainer is stopped although the spec wants it running:"
                            " `llmops plan` shows it",
    ("running", "absent"): "nothing of it on the host yet: `llmops plan` shows it",
    ("stopped", "stopped"): "as desired (checkpoints kept: `llmops run resume NAME`)",
    ("stopped", "done"): "it finished before it was stopped",
    ("stopped", "training"): "still training although the spec says stopped: `llmops plan`"
                             " shows it",
    ("stopped", "screening"): "still screening although the spec says stopped: `llmops plan`"
                              " shows it",
}
"""What the spec's `state` (desired) beside the state observed on the host means."""


def state_reading(name: str, desired: str, observed: str) -> list[tuple[str, str]]:
    """Pure: the desired and the observed state as `run show` labels them, and what the pair
    means (the spec's `running` is a wish, not what the host does: a finished run stays
    `running` in its spec)."""
    reading = STATE_READINGS.get((desired, observed))
    if reading is None:
        word = observed.split(":")[0]
        reading = ("as desired" if desired == observed
                   else f"observed {word}: `llmops plan` compares it with the spec")
    return [("desired state", f"{desired} (the spec)"),
            ("observed state", f"{observed} (on the host, now)"),
            ("", reading.replace("NAME", name))]
