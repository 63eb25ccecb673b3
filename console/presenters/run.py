"""Fine-tuning runs: step, progress, loss, eval loss, tokens/s and ETA in the row; the
selected run's progress bar, a live loss / eval-loss chart, its dataset screening report and
its log tail below. Stop and resume are spec changes (`state`), so each is an action that
ctrl+z undoes.

The row reads the run's progress records (progress.jsonl, polled with the row) first and
its telemetry sample where a record lacks a value."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text

from llmops.console.presenters.run_words import (
    eta_text,
    run_now,
    screening_text,
)
from llmops.console.presenters.server import model_cell
from llmops.console.screens.presenter import Key, Presenter, Toggle
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets.loss_chart import Chart, Series
from llmops.console.widgets.render import bar, num
from llmops.ops.kinds.base import Sample, Spec
from llmops.ops.kinds.run.spec import RunSpec

POLL_INTERVAL = 2.0
RUN_STATES = {"training": ("●", "cyan"), "screening": ("◌", "cyan"), "done": ("✓", "green"),
              "stopped": ("○", "grey50"), "failed": ("✗", "bold red"),
              "interrupted": ("◐", "bold yellow")}
"""How a run's state reads in its row (mark, style); others as any resource's."""


def run_spec(spec: Spec) -> RunSpec:
    assert isinstance(spec, RunSpec)
    return spec


class RunPresenter(Presenter):
    kind = "run"
    columns = ("name", "host", "state", "step/max", "progress", "loss", "eval loss", "tok/s",
               "ETA")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "New", "Start a new fine-tuning run (a form)"),
        "remove": Key("x", "Remove", "Stop the run and remove it from the lab; its checkpoints "
                      "and adapter stay on the host (an action; ctrl+z brings it back)"),
    }
    toggles = (
        Toggle("stop", Key("s", "Stop", "Stop the selected run gracefully: it saves a "
                           "checkpoint and exits (an action; u resumes it)"),
               "state", "stopped", "stopping", "stopped",
               confirm="The trainer saves a checkpoint and exits; its outputs stay on the "
               "host. This is an action: u resumes the run from that checkpoint, and ctrl+z "
               "undoes the stop."),
        Toggle("resume", Key("u", "Resume", "Resume the selected run from its newest "
                             "checkpoint (an action)"),
               "state", "running", "resuming", "resumed"),
    )
    form = FormLayout(
        fields=("name", "host", "base", "dataset", "validation", "eval_split", "text_field",
                "prompt_field", "completion_field", "messages_field", "r", "alpha",
                "target_modules", "qlora", "lr", "epochs", "max_steps", "batch_size",
                "early_stopping_patience", "screening", "dropout", "grad_accum", "max_seq_len",
                "eval_steps", "save_steps", "logging_steps", "seed", "gpus"),
        labels={"base": "Base model", "eval_split": "Eval split", "text_field": "Text field",
                "prompt_field": "Prompt field", "completion_field": "Completion",
                "messages_field": "Messages", "r": "Rank r", "target_modules": "Targets",
                "qlora": "QLoRA (4-bit)", "lr": "Learning rate", "max_steps": "Max steps",
                "batch_size": "Batch size", "early_stopping_patience": "Early stop",
                "grad_accum": "Grad accum", "max_seq_len": "Max seq len",
                "eval_steps": "Eval every", "save_steps": "Save every",
                "logging_steps": "Log every", "gpus": "GPUs"},
        help={"name": "e.g. qwen-lora-1 (lowercase letters, digits, '-')",
              "host": "a host of the lab (see Hosts)",
              "dataset": "e.g. ~/llmops-data/training/chat.jsonl (under the host's data dirs)",
              "text_field": "field with plain text (default: text, unless another format)"},
        refs={"host": "host"},
        sections={"name": "Run", "validation": "Data", "r": "LoRA", "lr": "Training",
                  "screening": "Screening (per rule: drop, keep or redact the rows it finds)",
                  "dropout": "Advanced"},
        advanced=("dropout", "grad_accum", "max_seq_len", "eval_steps", "save_steps",
                  "logging_steps", "seed", "gpus"),
        title="New fine-tuning run", submit="Start", edit_focus="lr")
    what = ("LoRA / QLoRA fine-tuning runs on your hosts appear here: step, loss, eval loss, "
            "tokens/s and ETA, with a live loss chart, the dataset's screening report and the "
            "log of the selected run.")
    cli = "llmops run start NAME --host H --base M --dataset PATH"
    created = "started"
    leaves = ("is stopped and leaves the lab's desired state (its checkpoints and adapter stay "
              "on the host)")
    busy_words: ClassVar[dict[str, str]] = {
        **Presenter.busy_words, "new": "starting", "remove": "removing"}
    serving = ("training", "screening", "done", "stopped")
    """States that need no explanation (a failed or interrupted run shows why, and its log)."""
    poll_interval = POLL_INTERVAL
    observe_interval = 4.0
    pane = True
    chart = Chart("step", (Series("loss", "loss", "cyan"),
                           Series("eval_loss", "eval loss", "magenta")), y_label="loss")
    tail_lines = 6

    def state_cell(self, row: RowState) -> Text:
        """A run's words: training and done read as good news, failed as bad."""
        look = RUN_STATES.get(row.state)
        if row.busy or look is None:
            return super().state_cell(row)
        mark, style = look
        return Text(f"{mark} {row.state}", style=style)

    def cells(self, row: RowState) -> list[str | Text]:
        spec, now = run_spec(row.spec), run_now(row.points, row.sample)
        steps = (f"{now.step if now.step is not None else '-'}/"
                 f"{now.max_steps if now.max_steps else '?'}")
        fraction = now.fraction
        progress = Text(bar(fraction or 0.0, 10), style="green" if now.ended == "done" else "cyan")
        progress.append(f" {fraction:4.0%}" if fraction is not None else "    -")
        eta = "done" if now.ended == "done" else eta_text(now.eta_s)
        if spec.state == "stopped" or now.ended in ("stopped", "error"):
            eta = "-"
        return [spec.name, spec.host, self.state_cell(row), steps, progress,
                num(now.loss, "{:.4f}"), num(now.eval_loss, "{:.4f}"),
                num(now.tokens_per_s, "{:.0f}"), eta]

    def detail_title(self, row: RowState) -> Text:
        spec = run_spec(row.spec)
        size = f"max {spec.max_steps} steps" if spec.max_steps else f"{spec.epochs:g} epochs"
        return Text.assemble(
            (spec.name, "bold"), f" on {spec.host} · {model_cell(spec.base, 36)} · "
            f"{spec.dataset.rsplit('/', 1)[-1]} · r {spec.r} α {spec.alpha}"
            f"{' QLoRA' if spec.qlora else ''} · lr {spec.lr:g} · {size} · ",
            (row.busy or row.state, "bold"), f" (wanted: {spec.state})")

    def stats(self, sample: Sample | None) -> Text | None:
        return None  # the progress bar says it all (see progress_bar)

    def progress_bar(self, row: RowState) -> tuple[float, float, Text] | None:
        now = run_now(row.points, row.sample)
        if now.step is None and not now.max_steps:
            return None
        total = float(now.max_steps or max(now.step or 0, 1))
        words = Text(f" step {now.step or 0}/{now.max_steps or '?'}", style="bold")
        words.append("  ETA ", style="grey50")
        words.append("done" if now.ended == "done" else now.ended or eta_text(now.eta_s),
                     style="bold")
        parts = [("loss", num(now.loss, "{:.4f}")), ("eval", num(now.eval_loss, "{:.4f}")),
                 ("tok/s", num(now.tokens_per_s, "{:.0f}")), ("epoch", num(now.epoch, "{:.2f}")),
                 ("lr", num(now.learning_rate, "{:.1e}"))]
        for label, value in parts:
            words.append(f"  {label} ", style="grey50")
            words.append(value)
        return float(now.step or 0), total, words

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        return screening_text(report)
