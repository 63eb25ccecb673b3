"""What the Servers view knows about each server, how one poll collects it (worker side),
and how a row shows it: pure enough to test without a UI."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text

from llmops.console.messages import ServerPolled
from llmops.console.screens.acting import error_text
from llmops.console.screens.server_detail import num
from llmops.console.widgets import render
from llmops.ops.kinds.base import HasLogs
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.telemetry import Sample, TelemetryPoller, ref_of

SPARK_POINTS = 90
LOG_TAIL = 20
COLUMNS = ("name", "host", "model", "tp/pp", "state", "tok/s", "p95", "KV %")
KIND = KINDS["server"]


@dataclass
class ServerState:
    """What the view knows about one server (event loop only)."""

    spec: ServerSpec
    state: str = "observing"
    sample: Sample | None = None
    recent: list[Sample] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    observed_at: float = 0.0
    in_flight: bool = False
    busy: str | None = None
    """What this console is doing to it (an action or a restart), shown in its row."""
    progress: str | None = None
    timer: int = 0
    """Bumped by every schedule, so an older timer finds itself replaced and does nothing."""


def model_cell(model: str, limit: int = 28) -> str:
    short = model.rstrip("/").rsplit("/", 1)[-1] if model.startswith("/") else model
    return short if len(short) <= limit else short[: limit - 1] + "…"


def state_cell(state: ServerState) -> Text:
    if state.busy:
        return Text(f"◌ {state.busy}", style="yellow")
    word = state.state
    if word == "up":
        return Text("● up", style="green")
    if word == "sleeping":
        return Text("◐ sleeping", style="cyan")
    if word == "stopped":
        return Text("○ stopped", style="grey50")
    if word.startswith("unreachable"):
        text = Text("✗ unreachable", style="bold red")
        text.append(f" · {render.short_reason(word, 36)}", style="grey50")
        return text
    if word.startswith("crashed"):
        return Text(f"✗ {word}", style="bold red")
    return Text(f"◌ {word}", style="yellow")


def row_cells(state: ServerState) -> list[str | Text]:
    """The table row; a server whose host does not answer is greyed but for its state."""
    spec, sample = state.spec, state.sample
    live = sample if sample is not None and sample.up else None
    cells: list[str | Text] = [
        spec.name, spec.host, model_cell(spec.model), f"{spec.tp}/{spec.pp}",
        state_cell(state), num(live.get("generation_tps") if live else None),
        num(live.get("e2e_p95") if live else None, "{:.2f}s"),
        num(live.get("kv_cache_pct") if live else None, "{:.1f}")]
    if state.state.startswith("unreachable"):
        cells = [c if i == 4 else render.dimmed(c) for i, c in enumerate(cells)]
    return cells


def poll_once(poller: TelemetryPoller, engine: Engine, spec: ServerSpec, observe: bool,
              was_up: bool | None) -> ServerPolled:
    """Worker side: a telemetry sample; the processes too when due or when the server just
    stopped (or started) answering, which is how a crash shows within one poll; and the log
    tail of a server that is not serving. Never raises: a failure degrades this row only."""
    try:
        sample = poller.poll(spec)
    except Exception:  # noqa: BLE001 - this server's row degrades, polling goes on
        sample = Sample(ref_of(KIND.name, spec.name), time.time(), up=False)
    state: str | None = None
    tail: list[str] | None = None
    if observe or sample.up != was_up:
        try:
            state = engine.status(spec, sample.up)  # starting until it answers
        except Exception as exc:  # noqa: BLE001 - shown in its row
            state = f"unreachable: {error_text(exc)}"
        if state not in ("up", "starting", "sleeping") and isinstance(KIND, HasLogs):
            try:
                tail = engine.logs(spec, LOG_TAIL)
            except Exception:  # noqa: BLE001 - no log is no reason to stop polling
                tail = None
    try:
        recent = poller.store.recent(sample.ref, SPARK_POINTS)
    except Exception:  # noqa: BLE001 - no history is no reason to stop polling
        recent = [sample]
    return ServerPolled(spec, sample, recent, state, tail)


def empty_text(read_only: bool) -> str:
    """What the Servers view says before there is a server, and how to make one."""
    how = ("This console is read-only; create one with:" if read_only
           else "Press [b]n[/b] for a new one, or run:")
    return ("[b]No servers yet.[/b]\n\nvLLM OpenAI servers on your hosts appear here with their "
            f"state, tokens/s, p95 latency and KV-cache use.\n\n{how}\n\n"
            "  [b]llmops server up NAME --host H --model M[/b]")


def row_matches(state: ServerState, text: str) -> bool:
    """The `/` filter: does the row's text contain `text` (any case)?"""
    plain = " ".join(c.plain if isinstance(c, Text) else c for c in row_cells(state))
    return text.lower() in plain.lower()
