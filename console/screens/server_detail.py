"""The selected server in detail (sparklines, the crash and its way back) and its log screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, RichLog, Sparkline, Static

from llmops.console.messages import ServerLogsLoaded
from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.telemetry import Sample

FOLLOW_INTERVAL = 2.0
LOG_LINES = 300
SPARKS: list[tuple[str, str, Callable[[Sample], float | None]]] = [
    ("tps", "tok/s", lambda s: s.get("generation_tps")),
    ("p95", "p95 s", lambda s: s.get("e2e_p95")),
    ("kv", "KV %", lambda s: s.get("kv_cache_pct")),
]


def num(value: float | None, fmt: str = "{:.1f}", none: str = "-") -> str:
    return none if value is None else fmt.format(value)


def stats_text(sample: Sample | None) -> Text:
    """The latest sample in one line: rates, queue, KV cache, latency, GPU."""
    if sample is None:
        return Text("no telemetry yet", style="grey50")
    if not sample.up:
        return Text("not answering /metrics", style="bold red")
    out = Text()
    get = sample.get
    for label, value in (
        ("tok/s", num(get("generation_tps"))), ("prompt tok/s", num(get("prompt_tps"))),
        ("running", num(get("running"), "{:.0f}")), ("waiting", num(get("waiting"), "{:.0f}")),
        ("KV", num(get("kv_cache_pct"), "{:.1f}%")),
        ("TTFT p50/p95", f"{num(get('ttft_p50'), '{:.2f}')}/{num(get('ttft_p95'), '{:.2f}')}s"),
        ("e2e p50/p95", f"{num(get('e2e_p50'), '{:.2f}')}/{num(get('e2e_p95'), '{:.2f}')}s"),
    ):
        out.append(f"{label} ", style="grey50")
        out.append(f"{value}  ", style="bold")
    if (gpu := get("gpu_util_pct")) is not None:
        out.append("GPU ", style="grey50")
        out.append(f"{gpu:.0f}%", style="bold")
    return out


def spark_values(samples: list[Sample], pick: Callable[[Sample], float | None]) -> list[float]:
    """A series for a Sparkline: a sample without the value (server down) counts as 0; a
    series with nothing in it is empty (a flat line of zeros would draw as full bars)."""
    values = [pick(s) or 0.0 for s in samples]
    return values if any(values) else []


def crash_text(name: str, state: str, log_tail: list[str],
               last_action: tuple[int, str] | None, read_only: bool) -> Text:
    """Why the server is not serving, its last log lines, and the way back."""
    text = Text()
    text.append(f"{name} is {state}\n", style="bold red")
    if last_action and not read_only:
        action_id, summary = last_action
        text.append(f"ctrl+z rolls back the last action on it: {action_id} ({summary}); "
                    "R restarts it as it is.\n", style="bold yellow")
    elif not read_only:
        text.append("R restarts it as it is.\n", style="bold yellow")
    if log_tail:
        text.append("last log lines:\n", style="grey50")
        for line in log_tail[-12:]:
            text.append(f"  {line[:200]}\n")
    return text


class ServerDetail(Vertical):
    """The pane under the table: what the selected server does now and over the last minutes."""

    def compose(self) -> ComposeResult:
        yield Label("", id="detail-title")
        yield Static("", id="detail-stats")
        for key, label, _ in SPARKS:
            with Horizontal(classes="spark-row"):
                yield Label(label, classes="spark-label")
                yield Sparkline([], id=f"spark-{key}", summary_function=max)
                yield Label("", id=f"spark-{key}-now", classes="spark-now")
        yield Label("", id="detail-progress")
        yield Static("", id="detail-crash")

    def show(self, spec: ServerSpec, state: str, samples: list[Sample],
             crash: Text | None, progress: str | None) -> None:
        """Redraw for one server (called on the event loop with what the view knows)."""
        self.query_one("#detail-title", Label).update(Text.assemble(
            (spec.name, "bold"), f" on {spec.host} · {spec.model} · tp {spec.tp} × pp {spec.pp}"
            f" · {spec.strategy} · port {spec.port} · max_model_len "
            f"{spec.max_model_len or 'model default'} · ", (state, "bold")))
        self.query_one("#detail-stats", Static).update(stats_text(samples[-1] if samples else None))
        for key, _label, pick in SPARKS:
            self.query_one(f"#spark-{key}", Sparkline).data = spark_values(samples, pick)
            latest = pick(samples[-1]) if samples else None
            self.query_one(f"#spark-{key}-now", Label).update(num(latest, "{:.2f}"))
        self.query_one("#detail-progress", Label).update(Text(progress or ""))
        self.query_one("#detail-progress", Label).display = bool(progress)
        crash_box = self.query_one("#detail-crash", Static)
        crash_box.update(crash or "")
        crash_box.display = crash is not None


class ServerLogScreen(Screen[None]):
    """The server's log tail (a HasLogs kind's, through the engine), followed every couple
    of seconds."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="server_logs.close", tooltip="Back to Servers"),
        Binding("f", "toggle_follow", "Follow", id="server_logs.follow",
                tooltip="Keep reading new lines (on by default)"),
    ]

    def __init__(self, context: ViewContext, spec: ServerSpec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        self.follow = True
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label(Text(f"log of server {self.spec.name} on {self.spec.host} (last "
                         f"{LOG_LINES} lines)"), classes="screen-title")
        yield RichLog(id="server-log", max_lines=LOG_LINES * 2, markup=False, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="server-logs",
          description="read a server's log tail")
    def load(self) -> None:
        try:
            lines = self.context.engine.logs(self.spec, LOG_LINES)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.post_message(ServerLogsLoaded(self.spec.name, [], error_text(exc)))
            return
        self.post_message(ServerLogsLoaded(self.spec.name, lines, None))

    def on_server_logs_loaded(self, message: ServerLogsLoaded) -> None:
        log = self.query_one(RichLog)
        if message.error is not None:
            log.write(Text(f"cannot read the log: {message.error}", style="red"))
        elif message.lines != self.lines:
            log.clear()
            log.write("\n".join(message.lines) if message.lines else "(the log is empty)")
            self.lines = message.lines
        if self.follow:
            self.set_timer(FOLLOW_INTERVAL, self.load)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify("following the log" if self.follow else "stopped following")
        if self.follow:
            self.load()

    def action_close(self) -> None:
        self.dismiss(None)
