"""LiteLLM gateways: where each listens, the model names it routes and to which servers, its
state, and the usage its callback records (requests per second, cost, errors, cache hits).
The detail pane has the routes, sparklines of requests and tokens per second, and the usage
per model (requests, tokens, cost, cache hits, fallbacks, which backends answered) from the
gateway's usage lines (`Engine.report`). `c` turns the cache on or off (an action: a config
reload, no request dropped; ctrl+z undoes it).

Gateways are made and re-routed with `llmops gateway up` (a routing table is more than a
one-line form field holds): the view offers no `n`/`e`, and says so when it is empty."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Key, Presenter, Spark, Toggle
from llmops.console.screens.resource_poll import RowState
from llmops.console.widgets.render import num
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.gateway.spec import GatewaySpec

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
        backends = ", ".join(f"{b} ×{n}" for b, n in m.get("backends", {}).items())
        if backends:
            text.append(f"  ({backends})", style="grey50")
        text.append("\n")
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
        return title

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        return usage_text(report)
