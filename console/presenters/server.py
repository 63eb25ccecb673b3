"""vLLM servers: state, tokens/s, p95 and KV cache in the row; the selected one's telemetry
as sparklines below, and when it is not serving, why (its log) and the way back. A server
sharded over a cluster lists the cluster's nodes in its detail (Ray alive, its vLLM workers on
each, each node's GPUs).

Telemetry is scraped every POLL_INTERVAL; the processes are observed less often (an SSH
round trip per server), and at once when the server stops answering, so a crash shows
within one poll."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text

from llmops.console.messages import ResourcePolled
from llmops.console.presenters.cluster import sharded_text
from llmops.console.screens.presenter import Confirm, Key, Opens, Presenter, Spark
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets.render import num
from llmops.ops.kinds.base import Sample, Spec
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Change
from llmops.rollback.summaries import bench_fields

if TYPE_CHECKING:
    from textual.screen import Screen

    from llmops.console.screens.base import ViewContext
    from llmops.rollback.telemetry import TelemetryPoller

POLL_INTERVAL = 2.0


def server_spec(spec: Spec) -> ServerSpec:
    assert isinstance(spec, ServerSpec)
    return spec


def reach(spec: ServerSpec) -> tuple[str, str, int, str]:
    """What of a server its gateways' configs hold (as the gateway kind's `reach_of`)."""
    return (spec.host, spec.listen, spec.port, spec.api_model())


def follower_text(spec: ServerSpec, followers: list[str]) -> Text:
    """The confirm's body: what else the action changes, in the same action (pure)."""
    text = Text()
    if spec.strategy == "canary":
        text.append(f"Server {spec.name} goes out as a canary: the new version starts beside "
                    "the live one and a gateway sends it a share of the traffic, then promotes "
                    "or rolls it back by its gates.\n\n")
    else:
        text.append(f"Server {spec.name} moves (host, listen address, port or served model "
                    "name): the gateways routing to it must follow.\n\n")
    if followers:
        text.append("In the same action (rolled back with it):\n", style="bold")
        for name in followers:
            text.append(f"  • {name}: its routes rewritten and reloaded (HUP)"
                        f"{', then the canary' if spec.strategy == 'canary' else ''}\n")
    elif spec.strategy == "canary":
        text.append("No gateway on its host routes to it: the change is refused (a canary "
                    "needs one).", style="bold red")
    else:
        text.append("No gateway routes to it: nothing else changes.", style="grey50")
    return text


def model_cell(model: str, limit: int = 28) -> str:
    short = model.rstrip("/").rsplit("/", 1)[-1] if model.startswith("/") else model
    return short if len(short) <= limit else short[: limit - 1] + "…"


def verdict_cell(verdict: str | None) -> Text:
    """The last bench's verdict: pass in green, fail in red, none grey."""
    if verdict is None:
        return Text("-", style="grey50")
    return Text(verdict, style="green" if verdict == "pass" else "bold red")


class ServerPresenter(Presenter):
    kind = "server"
    columns = ("name", "host", "model", "tp/pp", "state", "tok/s", "p95", "KV %", "verdict",
               "$/1M out")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "New", "Start a new vLLM server (a form)"),
        "remove": Key("x", "Stop", "Stop and remove the server (an action; ctrl+z brings it "
                      "back)", action="stop"),
    }
    form = FormLayout(
        fields=("name", "host", "model", "tp", "pp", "gpus", "port", "max_model_len",
                "gpu_memory_utilization", "quantization", "served_model_name", "cpu_kvcache_gib",
                "dtype", "strategy", "env", "enable_lora", "runtime_lora", "max_lora_rank",
                "listen", "cpu_inline_worker", "start_timeout_s"),
        labels={"tp": "TP", "pp": "PP", "gpus": "GPUs", "max_model_len": "Max len",
                "gpu_memory_utilization": "GPU mem", "quantization": "Quant",
                "served_model_name": "Served as", "cpu_kvcache_gib": "CPU KV GiB",
                "enable_lora": "LoRA", "runtime_lora": "Runtime LoRA",
                "max_lora_rank": "LoRA rank max", "cpu_inline_worker": "CPU inline",
                "start_timeout_s": "Start timeout"},
        help={"name": "e.g. qwen-7b (lowercase letters, digits, '-')",
              "host": "a host of the lab (see Hosts)",
              "max_model_len": "context length (default: the model's)",
              "env": "an env on the server's host (see Envs); empty: the host's python"},
        refs={"host": "host", "env": "env"}, title="New server", submit="Start",
        edit_focus="max_model_len",
        advanced=("max_lora_rank", "listen", "cpu_inline_worker", "start_timeout_s"))
    leave_out = frozenset({"open", "poll", "bench"})
    """The bench is a screen of its own (parameters, progress, the one before), not a dialog."""
    opens = (Opens("bench", Key("b", "Bench", "Load-test the selected server: parameters, live "
                                "progress, each target passed or failed, beside its previous "
                                "bench (changes nothing; stored per spec commit)")),)
    what = ("vLLM OpenAI servers on your hosts appear here with their state, tokens/s, p95 "
            "latency and KV-cache use.")
    cli = "llmops server up NAME --host H --model M"
    created = "up"
    removed = "down"
    leaves = "is stopped and leaves the lab's desired state"
    restart_note = "; requests in flight fail"
    busy_words: ClassVar[dict[str, str]] = {
        **Presenter.busy_words, "new": "starting", "remove": "stopping"}
    poll_interval = POLL_INTERVAL
    observe_interval = 30.0
    """Processes are looked at every 30 s while /metrics answers (a failed poll looks at
    once, so a crash still shows within a poll): each look costs the host a script run."""
    pane = True
    sparks = (Spark("tps", "tok/s", "generation_tps"), Spark("p95", "p95 s", "e2e_p95"),
              Spark("kv", "KV %", "kv_cache_pct"))

    def cells(self, row: RowState) -> list[str | Text]:
        spec, sample = server_spec(row.spec), row.sample
        live = sample if sample is not None and sample.up else None
        return [spec.name, spec.host, model_cell(spec.model), f"{spec.tp}/{spec.pp}",
                self.state_cell(row), num(live.get("generation_tps") if live else None),
                num(live.get("e2e_p95") if live else None, "{:.2f}s"),
                num(live.get("kv_cache_pct") if live else None, "{:.1f}"),
                verdict_cell((row.summary or {}).get("last_verdict")),
                num((row.summary or {}).get("cost_per_1m_output"), "{:.4f}")]

    def poll(self, context: ViewContext, poller: TelemetryPoller | None, spec: Spec,
             observe: bool, was_up: bool | None) -> ResourcePolled:
        """The generic poll, and when the row is observed, its last bench's verdict and cost
        (one SQLite read)."""
        polled = super().poll(context, poller, spec, observe, was_up)
        if polled.summary is not None:
            try:
                polled.summary.update(bench_fields(context.engine.last_bench(spec.name)))
            except Exception:  # noqa: BLE001 - the row goes without them
                pass
        return polled

    # -- a change that takes gateways along says so first ---------------------------------
    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        """An edit that moves the server (host, listen, port, served name) or goes out as a
        canary: the gateways routing to it follow in the same action (rollback/gateways.py)."""
        if not isinstance(before, ServerSpec):
            return False
        after = server_spec(spec)
        return after.strategy == "canary" or reach(before) != reach(after)

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        after = server_spec(spec)
        followers = context.engine.with_followers([Change("server", after.name, after)])[1:]
        return Confirm(f"Change server {after.name}?",
                       follower_text(after, [f"{c.kind} {c.name}" for c in followers]),
                       "Change", spec=after)

    def notes(self, context: ViewContext, spec: Spec, state: str) -> Text | None:
        """Worker side: a server sharded over a cluster lists the cluster's nodes (Ray alive,
        its vLLM workers placed on each, each node's GPUs), from the cluster's report."""
        server = server_spec(spec)
        if not server.cluster:
            return None
        cluster = context.lab.read_spec("cluster", server.cluster)
        if cluster is None:
            return Text(f"cluster {server.cluster} is not in the lab", style="bold red")
        return sharded_text(server.cluster, context.engine.report(cluster) or {}, server.name)

    def open_screen(self, verb: str, context: ViewContext, row: RowState) -> Screen[None]:
        from llmops.console.screens.bench import BenchScreen

        return BenchScreen(context, server_spec(row.spec))

    def detail_title(self, row: RowState) -> Text:
        spec = server_spec(row.spec)
        return Text.assemble(
            (spec.name, "bold"), f" on {spec.host} · {spec.model} · tp {spec.tp} × pp {spec.pp}"
            f" · {spec.strategy} · port {spec.port} · max_model_len "
            f"{spec.max_model_len or 'model default'} · ", (row.busy or row.state, "bold"))

    def stats(self, sample: Sample | None) -> Text:
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
