"""LiteLLM gateways: where each listens, the model names it routes and to which servers, its
state, and the usage its callback records (requests per second, cost, errors, cache hits).
The detail pane has the routes, sparklines of requests and tokens per second, and the usage
per model (requests, tokens, cost, cache hits, fallbacks, which backends answered) from the
gateway's usage lines (`Engine.report`), and per model per minute (`Engine.gateway_minutes`:
the lines tailed into lab.db's `gateway_usage`): requests, tokens and cost in the last minute,
guardrail blocks per minute, and a sparkline of requests per minute over the last half hour.
`c` turns the cache on or off (an action: a config reload, no request dropped; ctrl+z undoes
it); `i` opens the "try it" box (a prompt through the gateway; changes nothing).

Gateways are made and re-routed with `llmops gateway up` (a routing table is more than a
one-line form field holds): the view offers no `n`/`e`, and says so when it is empty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Key, Opens, Presenter, Spark, Toggle
from llmops.console.screens.resource_poll import RowState
from llmops.console.widgets.render import num
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.gateway.spec import GatewaySpec

if TYPE_CHECKING:
    from textual.screen import Screen

    from llmops.console.screens.base import ViewContext

GATEWAY_STATES = {"serving": ("●", "green"), "starting": ("◐", "bold yellow"),
                  "installing": ("◐", "bold yellow"), "stopped": ("○", "grey50"),
                  "crashed": ("✖", "bold red")}


def gateway_spec(spec: Spec) -> GatewaySpec:
    assert isinstance(spec, GatewaySpec)
    return spec


def routes_text(spec: GatewaySpec) -> str:
    """`chat → ga,gb; code → gb` (fallbacks after `⇢`)."""
    parts = []
    for model, servers in spec.models.items():
        tail = f" ⇢ {','.join(spec.fallbacks[model])}" if model in spec.fallbacks else ""
        parts.append(f"{model} → {','.join(servers)}{tail}")
    return "; ".join(parts)


def usage_text(report: dict[str, Any] | None) -> Text | None:
    """Usage per model, from the gateway's usage lines: one line each."""
    if not report:
        return None
    text = Text("usage", style="bold")
    text.append(" (from the gateway's usage lines)\n", style="grey50")
    models = report.get("models") or {}
    if not models:
        text.append("  no request yet", style="grey50")
    for model, m in models.items():
        text.append(f"  {model:<12}", style="bold")
        text.append(f" {m['requests']} req · {m['errors']} err · "
                    f"{m['prompt_tokens']}+{m['completion_tokens']} tok · cost {m['cost']:.6f}"
                    f" · cache {m['cache_hits']} · fallbacks {m['fallbacks']}")
        if m.get("blocked") or m.get("redacted"):
            text.append(f" · blocked {m.get('blocked', 0)} · redacted {m.get('redacted', 0)}",
                        style="bold yellow")
        if m.get("unchecked"):  # its guard model failed and the spec lets such prompts pass
            text.append(f" · unchecked {m['unchecked']}", style="bold red")
        backends = ", ".join(f"{b} ×{n}" for b, n in m.get("backends", {}).items())
        if backends:
            text.append(f"  ({backends})", style="grey50")
        text.append("\n")
    return text


BLOCKS = "▁▂▃▄▅▆▇█"
MINUTES = 30
"""The window of the per-minute figures (the sparkline's width)."""


def sparkline(values: list[float]) -> str:
    """Pure: one block character per value, scaled to the largest (all quiet: the lowest)."""
    top = max(values, default=0.0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))]
                   for v in values)


def minutes_text(series: dict[str, list[dict[str, float]]]) -> Text | None:
    """Per model: the last minute's requests, tokens, cost and guardrail blocks (rates per
    minute), the window's totals, and a sparkline of requests per minute."""
    if not series:
        return None
    text = Text("per minute", style="bold")
    text.append(f" (last {MINUTES} min from lab.db; the current minute last)\n", style="grey50")
    for model, points in series.items():
        now = points[-1] if points else {}
        requests = [p["requests"] for p in points]
        blocked = sum(p["blocked"] for p in points)
        text.append(f"  {model:<12}", style="bold")
        text.append(f" {sparkline(requests)} ", style="cyan")
        text.append(f"{now.get('requests', 0):.0f} req/min · "
                    f"{now.get('prompt_tokens', 0) + now.get('completion_tokens', 0):.0f} tok/min"
                    f" · cost/min {now.get('cost', 0.0):.6f} · ")
        text.append(f"blocked {now.get('blocked', 0):.0f}/min",
                    style="bold yellow" if now.get("blocked") else "")
        text.append(f"  ({sum(requests):.0f} req, {blocked:.0f} blocked "
                    f"= {blocked / MINUTES:.2f}/min over {MINUTES} min)\n", style="grey50")
    return text


class GatewayPresenter(Presenter):
    kind = "gateway"
    columns = ("name", "host", "port", "state", "routes", "req/s", "cost", "errors", "cache %")
    leave_out = frozenset({"open", "poll", "new", "edit"})
    keys: ClassVar[dict[str, Key]] = {
        "remove": Key("x", "Remove", "Stop the gateway and remove it from the lab (an action; "
                      "ctrl+z brings it back on the same routes)"),
    }
    toggles = (
        Toggle("cache-on", Key("c", "Cache on", "Answer repeated requests from the gateway's "
                               "cache (a config reload: no request dropped; ctrl+z undoes it)"),
               "cache", True, "reloading", "cache on"),
        Toggle("cache-off", Key("C", "Cache off", "Stop answering from the cache (a config "
                                "reload; ctrl+z undoes it)"),
               "cache", False, "reloading", "cache off"),
    )
    opens = (Opens("try", Key("i", "Try it", "Send a prompt through the selected gateway: the "
                              "answer, which server answered, tokens, cost, and whether a "
                              "guardrail fired (changes nothing)")),)
    sparks = (Spark("rps", "req/s", "req_per_s"), Spark("tps", "tok/s", "tokens_per_s"))
    what = ("LiteLLM gateways appear here: one OpenAI endpoint routing model names to the "
            "lab's servers, with fallbacks, a cache, and the tokens and cost of every request.")
    cli = "llmops gateway up NAME --host H --model chat=SERVER"
    created = "up"
    leaves = ("is stopped and leaves the lab's desired state (its venv and usage lines stay "
              "on the host)")
    serving = ("serving",)
    observe_interval = 15.0
    pane = True

    def state_cell(self, row: RowState) -> Text:
        look = GATEWAY_STATES.get(row.state)
        if row.busy or look is None:
            return super().state_cell(row)
        mark, style = look
        return Text(f"{mark} {row.state}", style=style)

    def cells(self, row: RowState) -> list[str | Text]:
        spec, seen = gateway_spec(row.spec), row.summary or {}
        pct = seen.get("cache_hit_pct")
        return [spec.name, spec.host, str(spec.port), self.state_cell(row), routes_text(spec),
                num(seen.get("req_per_s"), "{:.2f}"), num(seen.get("cost"), "{:.6f}"),
                num(seen.get("errors"), "{:.0f}"),
                "-" if pct is None or not spec.cache else f"{pct:.0f}"]

    def detail_title(self, row: RowState) -> Text:
        spec = gateway_spec(row.spec)
        title = Text.assemble((spec.name, "bold"), f" · {spec.listen}:{spec.port} on "
                              f"{spec.host} · ", (row.busy or row.state, "bold"))
        title.append(f"\nroutes     {routes_text(spec)}")
        title.append(f"\nrouter     retries {spec.num_retries} · cool-down {spec.cooldown_s:g}s "
                     f"after {spec.allowed_fails} fails · timeout {spec.timeout_s:g}s · cache "
                     f"{'on, ttl ' + str(spec.cache_ttl_s) + 's' if spec.cache else 'off'}",
                     style="grey50")
        title.append(f"\nkey        ${spec.master_key_env} · LiteLLM {spec.litellm_version}",
                     style="grey50")
        guarded = ", ".join(spec.guardrails) or "none"
        title.append(f"\nguardrails {guarded}", style="grey50")
        if spec.guards:
            title.append("\nguards     " + "; ".join(
                f"{m} → {g.server} ({g.label} ≥ {g.threshold:g}, fails {g.on_error}, "
                f"{g.timeout_s:g}s)" for m, g in spec.guards.items()), style="grey50")
        return title

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        return usage_text(report)

    def open_screen(self, verb: str, context: ViewContext, row: RowState) -> Screen[None]:
        from llmops.console.screens.gateway_try import GatewayTryScreen

        return GatewayTryScreen(context, gateway_spec(row.spec))

    def notes(self, context: ViewContext, spec: Spec, state: str) -> Text | None:
        """Worker side: the usage lines read on into lab.db, then the per-minute figures."""
        return minutes_text(context.engine.gateway_minutes(gateway_spec(spec), MINUTES))
