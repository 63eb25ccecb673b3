"""A server's canary, its pure parts: the gate's verdicts from data cases
(tests/cases/canary/gate.toml), each colour's figures from /metrics deltas and the gateway's
usage lines, which colour waits for its canary, the server's plan (start, hold: no switch), the
gateway's weighted config and its steps, and the refusals (no gateway, a gateway on another
host). The live canary (real LiteLLM, real vLLM) is tests/test_canary_live.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pydantic
import pytest

from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.gateway import GatewayKind, GatewaySpec
from llmops.ops.kinds.gateway.canary import CanaryObserved, CanaryTarget, canary_config
from llmops.ops.kinds.gateway.config import Backend, config_dict, config_text, marker_of
from llmops.ops.kinds.gateway.launch import launch_hash as gateway_hash
from llmops.ops.kinds.gateway.plan import plan_gateway
from llmops.ops.kinds.server import ServerSpec, plan_server
from llmops.ops.kinds.server import canary as gate
from llmops.ops.kinds.server.client import parse_metrics
from llmops.ops.kinds.server.launch import launch_hash
from llmops.ops.kinds.server.observed import ServerObserved

CASES = tomllib.loads((Path(__file__).parent / "cases" / "canary" / "gate.toml").read_text())
FACTS = {"python": "/usr/bin/python3", "workdir": "/w", "cpu_count": 2,
         "ram_total_bytes": 24 * 2**30, "gpus": [], "packages": {"vllm": "0.32.0"}}


@pytest.mark.parametrize("case", CASES["case"], ids=[c["name"] for c in CASES["case"]])
def test_gate_case(case: dict[str, Any]) -> None:
    verdict = gate.decide(gate.Gates(**case.get("gates", {})),
                          gate.ColourFigures(**case["live"]), gate.ColourFigures(**case["new"]))
    assert verdict.promote is case["promote"], verdict.text
    for words in case["has"]:
        assert words in verdict.text, verdict.text


def test_gates_fill_in_defaults_and_take_the_spec() -> None:
    spec = server(strategy="canary")
    assert gate.gates_of(spec) == gate.Gates()
    spec = server(strategy="canary", canary_share=0.5, canary_window_s=20,
                  canary_min_requests=4, canary_floor_ms=500)
    assert gate.gates_of(spec) == gate.Gates(share=0.5, window_s=20, min_requests=4,
                                             floor_ms=500)
    assert "canary_share" not in server(strategy="blue-green").to_toml_dict()


@pytest.mark.parametrize(("field", "value"), [("canary_share", 1.0), ("canary_share", 0),
                                              ("canary_window_s", 1),
                                              ("canary_max_ttft_ratio", 0.5),
                                              ("canary_max_error_rate", 2)])
def test_bad_canary_fields_are_refused_naming_them(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        server(strategy="canary", **{field: value})


def test_early_stop_when_down_or_failing() -> None:
    g = gate.Gates(min_requests=4)
    assert gate.early(g, gate.ColourFigures(up=False), 1) is None
    down = gate.early(g, gate.ColourFigures(up=False), 2)
    assert down is not None and not down.promote and "does not answer" in down.text
    failing = gate.early(g, gate.ColourFigures(gateway_requests=4, gateway_errors=2), 0)
    assert failing is not None and "2/4 = 50.0%" in failing.text
    assert gate.early(g, gate.ColourFigures(gateway_requests=3, gateway_errors=3), 0) is None


METRICS = """\
# HELP vllm:time_to_first_token_seconds ttft
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="0.02",model_name="m"}} {a}
vllm:time_to_first_token_seconds_bucket{{le="0.04",model_name="m"}} {b}
vllm:time_to_first_token_seconds_bucket{{le="+Inf",model_name="m"}} {b}
vllm:time_to_first_token_seconds_count{{model_name="m"}} {b}
vllm:time_to_first_token_seconds_sum{{model_name="m"}} 1.0
# HELP vllm:inter_token_latency_seconds itl
# TYPE vllm:inter_token_latency_seconds histogram
vllm:inter_token_latency_seconds_bucket{{le="0.01",model_name="m"}} {a}
vllm:inter_token_latency_seconds_bucket{{le="+Inf",model_name="m"}} {a}
vllm:inter_token_latency_seconds_count{{model_name="m"}} {a}
vllm:inter_token_latency_seconds_sum{{model_name="m"}} 0.1
# HELP vllm:e2e_request_latency_seconds e2e
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{{le="+Inf",model_name="m"}} {b}
vllm:e2e_request_latency_seconds_count{{model_name="m"}} {b}
vllm:e2e_request_latency_seconds_sum{{model_name="m"}} {s}
"""


def snap(a: int, b: int, s: float) -> Any:
    return parse_metrics(METRICS.format(a=a, b=b, s=s))


def test_figures_are_deltas_over_the_window_and_the_gateways_lines_per_port() -> None:
    before, after = snap(10, 10, 1.0), snap(10, 20, 3.0)  # 10 new requests, all 20-40 ms
    usage = [
        {"api_base": "http://127.0.0.1:28601/v1", "ok": True, "seconds": 0.3,
         "overhead_ms": 8.0},
        {"api_base": "http://127.0.0.1:28601/v1/chat/completions", "ok": False},
        {"api_base": "http://127.0.0.1:18601/v1", "ok": True, "seconds": 0.1},
        {"api_base": "http://127.0.0.1:28601/v1", "ok": True, "event": "guardrail"},
    ]
    f = gate.figures(before, after, usage, 28601)
    assert f.requests == 10 and f.backend_ms == 200.0
    assert f.ttft_p95_ms is not None and 20.0 < f.ttft_p95_ms <= 40.0
    assert f.itl_p95_ms is None  # no token gap in the window: nothing to compare
    assert (f.gateway_requests, f.gateway_errors, f.gateway_ms, f.overhead_ms) \
        == (2, 1, 300.0, 8.0)
    assert f.error_rate == 0.5 and "errors 1/2" in f.line()
    down = gate.figures(before, None, usage, 18601)
    assert not down.up and down.gateway_requests == 1 and "DOWN" in down.line()
    assert gate.port_of_base("http://[::1]:8000/v1") == 8000
    assert gate.port_of_base("nonsense") is None


# -- which colour waits, the server's plan --------------------------------------------------
def server(**fields: Any) -> ServerSpec:
    return ServerSpec(**{"name": "s", "host": "local", "model": "/m/tiny", "port": 18000,
                         **fields})


def observed(spec: ServerSpec, old: ServerSpec, *, green: str | None, green_started: float,
             live: str = "blue") -> ServerObserved:
    procs: dict[str, Any] = {
        "s-live": {"running": True, "port": 18000, "listen": "127.0.0.1"},
        "s-blue": {"running": True, "hash": launch_hash(old, FACTS), "port": 28000,
                   "started": 100.0},
    }
    if green is not None:
        procs["s-green"] = {"running": True, "port": 38000, "started": green_started,
                            "hash": launch_hash(spec if green == "new" else old, FACTS)}
    return ServerObserved.model_validate({"facts": FACTS, "procs": procs, "live": live,
                                          "idle_until": 0.0, "now": 1000.0})


OLD = server(strategy="canary", max_model_len=256)
NEW = server(strategy="canary", max_model_len=512)


def verbs(steps: list[Any]) -> list[str]:
    return [s.verb for s in steps]


def test_a_canary_change_starts_the_new_colour_and_holds_instead_of_switching() -> None:
    steps = plan_server(NEW, OLD, observed(NEW, OLD, green=None, green_started=0))
    assert verbs(steps) == ["check-model", "start", "wait-ready", "smoke", "canary-hold"]
    assert steps[1].data.proc == "s-green" and "10% of its gateways' traffic for 60s" \
        in steps[-1].detail
    bg = NEW.model_copy(update={"strategy": "blue-green"})
    assert verbs(plan_server(bg, OLD, observed(bg, OLD, green=None, green_started=0)))[-1] \
        == "switch"


def test_the_new_colour_waits_until_its_gateway_promotes_it() -> None:
    seen = observed(NEW, OLD, green="new", green_started=200.0)
    assert gate.pending_colour(NEW, seen, launch_hash(NEW, FACTS)) == "green"
    assert verbs(plan_server(NEW, OLD, seen)) == ["canary-hold"]


def test_a_rollback_within_the_grace_switches_at_once() -> None:
    """The idle colour that runs the wanted spec started before the live one: it is the
    previous version, kept warm; going back to it is a switch, no canary."""
    seen = observed(NEW, OLD, green="new", green_started=50.0)
    assert gate.pending_colour(NEW, seen, launch_hash(NEW, FACTS)) is None
    assert verbs(plan_server(NEW, OLD, seen)) == ["switch"]


def test_a_first_start_has_no_canary() -> None:
    empty = ServerObserved.model_validate({"facts": FACTS})
    assert verbs(plan_server(NEW, None, empty))[-2:] == ["switch", "start-forwarder"]


# -- the gateway's side ---------------------------------------------------------------------
GW = GatewaySpec(name="gw", host="local", port=18100, models={"chat": ["s"], "code": ["o"]},
                 prices={"s": {"input_per_1m": 1, "output_per_1m": 2}},
                 master_key_env="GW_KEY")
BACKENDS = {"s": Backend("s", "http://127.0.0.1:18000/v1", "m"),
            "o": Backend("o", "http://127.0.0.1:18001/v1", "o")}
TARGET = CanaryTarget(live="blue", new="green", new_port=38000, new_model="m", share=0.25,
                      window_s=30)


def test_canary_config_weighs_the_servers_deployments() -> None:
    found = canary_config(config_dict(GW, BACKENDS), "s", TARGET)
    chat = [d for d in found["model_list"] if d["model_name"] == "chat"]
    assert [(d["litellm_params"]["api_base"], d["litellm_params"]["weight"]) for d in chat] \
        == [("http://127.0.0.1:18000/v1", 750), ("http://127.0.0.1:38000/v1", 250)]
    assert chat[1]["model_info"]["id"] == "chat.s.canary"
    assert chat[1]["litellm_params"]["input_cost_per_token"] == 1e-6  # priced as the server
    code = [d for d in found["model_list"] if d["model_name"] == "code"]
    assert len(code) == 1 and "weight" not in code[0]["litellm_params"]


def gateway_observed(**canaries: CanaryTarget) -> CanaryObserved:
    text = config_text(GW, BACKENDS, "")
    return CanaryObserved.model_validate({
        "facts": {"workdir": "/w", "python": "python3"}, "venv_version": GW.litellm_version,
        "config_hash": marker_of(text), "proc_running": True,
        "proc_hash": gateway_hash(GW, {"workdir": "/w", "python": "python3"}),
        "loaded_hash": marker_of(text),
        "backends": {k: {"api_base": b.api_base, "api_model": b.api_model}
                     for k, b in BACKENDS.items()},
        "canaries": canaries})


def test_the_gateway_plans_route_watch_promote_for_a_waiting_canary() -> None:
    assert plan_gateway(GW, GW, gateway_observed()) == []
    steps = plan_gateway(GW, GW, gateway_observed(s=TARGET))
    assert verbs(steps) == ["canary-route", "canary-watch", "canary-promote"]
    route, watch, promote = (s.data for s in steps)
    weighted = json.loads(route.config)
    assert len(weighted["model_list"]) == 3 and route.hash == marker_of(route.config)
    plain = config_text(GW, BACKENDS, "")
    assert watch.config == promote.config == plain  # routed back / promoted: one route
    assert (promote.server, promote.new, promote.new_port, promote.live) \
        == ("s", "green", 38000, "blue")
    assert "25% of gw's traffic for s to s-green" in steps[0].detail


def test_several_gateways_one_canary_the_lowest_name_leads_for_all() -> None:
    """Gateways gw and gz on the host route to s: gw (the lowest name) runs the canary with
    gz as its peer (its route, watch and promote carry gz); gz plans nothing for it."""
    from llmops.ops.kinds.gateway.canary import leads

    assert leads("gw", ["gz"]) and not leads("gz", ["gw"]) and leads("gw", [])
    led = TARGET.model_copy(update={"peers": ["gz"]})
    steps = plan_gateway(GW, GW, gateway_observed(s=led))
    assert verbs(steps) == ["canary-route", "canary-watch", "canary-promote"]
    assert all(s.data.peers == ("gz",) for s in steps), steps
    route = steps[0].data
    assert (route.share, route.new_model) == (0.25, "m")  # a peer's weighted config is built
    assert "25% of gw and gz's traffic for s to s-green" in steps[0].detail


def test_the_gateway_follows_a_canary_server_on_its_host() -> None:
    kind = GatewayKind()
    dep = ("server", "s")
    assert kind.follows(GW, dep, OLD, NEW)
    assert not kind.follows(GW, dep, NEW, NEW)
    bg_old, bg_new = (s.model_copy(update={"strategy": "blue-green"}) for s in (OLD, NEW))
    assert not kind.follows(GW, dep, bg_old, bg_new)
    assert kind.follows(GW, dep, bg_old, bg_new.model_copy(update={"port": 18002}))


def context(*specs: Any) -> Context:
    return Context({(type(s).__name__.removesuffix("Spec").lower(), s.name): s
                    for s in specs}, lambda kind, name: None)


def test_a_canary_without_a_gateway_on_its_host_is_refused_naming_the_fix() -> None:
    with pytest.raises(SpecError) as err:
        gate.admit_canary(NEW, context(NEW))
    assert err.value.field == "strategy"
    assert "no gateway routes to server s" in str(err.value)
    assert "strategy = 'blue-green'" in str(err.value)
    far = GW.model_copy(update={"host": "g2"})
    with pytest.raises(SpecError, match="from another host"):
        gate.admit_canary(NEW, context(NEW, far))
    gate.admit_canary(NEW, context(NEW, GW))
    gate.admit_canary(NEW.model_copy(update={"strategy": "blue-green"}), context(NEW))
