"""A server's Bench screen: the load test's parameters, its live progress, and the result beside
the previous bench of the same server (figure by figure, with the change), each target passed
or failed, the cost per 1M tokens. The bench runs in a thread worker through
`Engine.run_bench`; it changes nothing on the host or in git, and is stored (per server and spec
commit) unless the console is read-only. Escape goes back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, Static

from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.console.specs import problems_text
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.benches import BenchParams
from llmops.rollback.summaries import bench_side_by_side

FIELDS = ("requests", "rate", "concurrency", "input_len", "output_len", "warmup", "duration_s",
          "dataset")
"""The form's inputs, in order: BenchParams fields (empty = the default)."""
LABELS = {"requests": "requests", "rate": "rate/s (empty: all at once)",
          "concurrency": "in flight", "input_len": "prompt tok", "output_len": "output tok",
          "warmup": "warm-up", "duration_s": "seconds", "dataset": "dataset .jsonl"}


@dataclass
class BenchProgressed(Message):
    """Requests finished so far (worker -> screen); only the newest one matters."""

    done: int
    total: int | None
    seconds: float

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BenchProgressed)


@dataclass
class BenchDone(Message):
    """A bench ended (its stored row) or failed (why); `before` is the one to compare with."""

    row: dict[str, Any] | None
    before: dict[str, Any] | None
    error: str | None


@dataclass
class BenchesLoaded(Message):
    """The server's last bench and the one before it, when the screen opens."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None


def bench_params(values: dict[str, str]) -> BenchParams:
    """Pure: the form's text as parameters (empty = default); ValidationError names a field."""
    given = {k: v.strip() for k, v in values.items() if v.strip()}
    return BenchParams.model_validate(given)


def verdict_text(row: dict[str, Any] | None) -> Text:
    """Each target passed or failed, and the cost, in one block."""
    if row is None:
        return Text("no bench of this server yet: set the parameters and press Enter",
                    style="grey50")
    out = Text()
    for v in row["verdicts"]:
        out.append("PASS " if v["ok"] else "FAIL ", style="bold green" if v["ok"] else "bold red")
        out.append(f"{v['words']}\n")
    cost = row.get("cost") or {}
    if cost:
        watts = f", {cost['watts']} W ({cost['watts_from']})" if cost.get("watts") else ""
        out.append(f"cost per 1M tokens: output {cost.get('per_1m_output')}, input "
                   f"{cost.get('per_1m_input')} ({cost.get('per_hour')}/h, share "
                   f"{cost.get('share')}{watts})", style="grey50")
    else:
        out.append("no cost: set the host's cost_per_hour (or price_per_kwh)", style="grey50")
    return out


class BenchScreen(Screen[None]):
    """Load-test one server, and see how it moved since the bench before."""

    CSS_PATH = "bench.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="bench.close", tooltip="Back to the servers"),
        Binding("ctrl+r", "run", "Run", id="bench.run",
                tooltip="Run the load test with these parameters (Enter in a field too)"),
    ]

    def __init__(self, context: ViewContext, spec: ServerSpec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        self.running = False
        self.before: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self.done: BenchDone | None = None

    def compose(self) -> ComposeResult:
        s = self.spec
        yield Label(Text.assemble(("bench server ", "bold"), (s.name, "bold"),
                                  f" · {s.model} on {s.host} · targets: first-token p95 < "
                                  f"{s.target_ttft_p95_ms:g} ms, output > "
                                  f"{s.target_output_tps:g} tok/s"), classes="screen-title")
        defaults = BenchParams()
        with Horizontal(id="bench-form"):
            for name in FIELDS:
                value = getattr(defaults, name)
                field = Input("" if value is None else str(value), placeholder=LABELS[name],
                              id=f"bench-{name}", classes="bench-field",
                              tooltip=BenchParams.model_fields[name].description)
                field.border_title = LABELS[name]  # a placeholder hides once a value is in
                yield field
        with Horizontal(id="bench-bar-row"):
            yield ProgressBar(total=None, show_eta=False, id="bench-bar")
            yield Static(Text("ready", style="grey50"), id="bench-line")
        yield Static(verdict_text(None), id="bench-verdicts")
        table: DataTable[str | Text] = DataTable(id="bench-table", cursor_type="row")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#bench-table", DataTable).add_columns("figure", "previous", "this",
                                                              "change")
        self.query_one("#bench-requests", Input).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="bench-load",
          description="the server's stored benches")
    def load(self) -> None:
        before, after = self.context.engine.bench_pair(self.spec.name)
        self.post_message(BenchesLoaded(before, after))

    def on_benches_loaded(self, message: BenchesLoaded) -> None:
        if self.running or self.done is not None:
            return
        self.before, self.after = message.before, message.after
        self.show(message.before, message.after)

    def show(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        table = self.query_one("#bench-table", DataTable)
        table.clear()
        for label, a, b, change in bench_side_by_side(before, after):
            table.add_row(label, a, Text(b, style="bold"), change)
        self.query_one("#bench-verdicts", Static).update(verdict_text(after))

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        if self.running:
            return
        line = self.query_one("#bench-line", Static)
        try:
            params = bench_params({n: self.query_one(f"#bench-{n}", Input).value
                                   for n in FIELDS})
        except ValidationError as exc:
            line.update(Text(problems_text(exc), style="bold red"))
            return
        self.running, self.done = True, None
        bar = self.query_one("#bench-bar", ProgressBar)
        bar.update(total=params.requests, progress=0)
        line.update(Text(f"benchmarking: {params.words()}…", style="cyan"))
        self.bench(params)

    @work(thread=True, exclusive=True, exit_on_error=False, group="bench-run",
          description="a load test of a server")
    def bench(self, params: BenchParams) -> None:
        engine = self.context.engine

        def progress(done: int, total: int | None, seconds: float) -> None:
            self.post_message(BenchProgressed(done, total, seconds))

        try:
            row = engine.run_bench(self.spec.name, params, store=not self.context.read_only,
                                   progress=progress)
            before = engine.bench_pair(self.spec.name)[0] if not self.context.read_only \
                else self.after
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(BenchDone(None, None, error_text(exc)))
            return
        self.post_message(BenchDone(row, before, None))

    def on_bench_progressed(self, message: BenchProgressed) -> None:
        if not self.running:
            return
        self.query_one("#bench-bar", ProgressBar).update(progress=message.done)
        total = message.total if message.total is not None else "?"
        self.query_one("#bench-line", Static).update(
            Text(f"{message.done}/{total} requests, {message.seconds:.1f} s", style="cyan"))

    def on_bench_done(self, message: BenchDone) -> None:
        self.running, self.done = False, message
        line = self.query_one("#bench-line", Static)
        if message.error is not None or message.row is None:
            line.update(Text(f"the bench failed: {message.error}", style="bold red"))
            self.notify(message.error or "no result", title=f"bench of {self.spec.name} failed",
                        severity="error", timeout=12)
            return
        row = message.row
        f = row["figures"]
        bar = self.query_one("#bench-bar", ProgressBar)
        bar.update(total=max(1, f["completed"] + f["failed"]),
                   progress=f["completed"] + f["failed"])
        stored = "stored" if row.get("id") is not None else "not stored (read-only)"
        line.update(Text(f"{row['verdict'].upper()}: {f['completed']} completed, {f['failed']} "
                         f"failed in {f['duration_s']:.1f} s at {time.strftime('%H:%M:%S')} "
                         f"({stored})", style="bold green" if row["verdict"] == "pass"
                         else "bold red"))
        self.before, self.after = message.before, row
        self.show(message.before, row)

    def action_close(self) -> None:
        self.dismiss(None)
