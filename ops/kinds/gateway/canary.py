"""A server's canary as its gateway runs it (pure part): which servers wait for one, the
weighted config that sends them a share of the model's traffic, and the plan's steps.

A server with `strategy = "canary"` starts a change in its idle colour and holds
(ops/kinds/server/plan.py `canary-hold`); the gateway follows that change into the same action
(kind.py `follows`), after the server (order 85 > 60). Its observe finds the colour that waits
(ops/kinds/server/canary.py `pending_colour`) and its plan adds, per such server:
`canary-route` (each deployment of the server keeps weight 1 - share; beside it a deployment
of the new colour's loopback port with weight share: LiteLLM's simple-shuffle picks by
weight; a HUP, no request dropped), `canary-watch` (the window: both colours' figures, the
gate; a failed gate routes back, stops the new colour and fails the action, which reverts)
and `canary-promote` (the live port switched to the new colour, the config back to one route
per server). The steps themselves are in canaryrun.py."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Step, StepData
from llmops.ops.kinds.gateway.config import Backend, config_dict, marker_of, text_of
from llmops.ops.kinds.gateway.observed import GatewayObserved
from llmops.ops.kinds.gateway.spec import GatewaySpec

CANARY_SUFFIX = ".canary"
WEIGHTS = 1000
"""Weights are integers per mille (LiteLLM's documented `weight: 9`; its type says int)."""


class CanaryTarget(BaseModel):
    """A server whose new colour waits for its canary, as the gateway's observe found it."""

    model_config = ConfigDict(extra="forbid")

    live: str
    """The live colour (the old version)."""
    new: str
    """The colour that runs the new version, not live yet."""
    new_port: int
    """The new colour's loopback port (the canary deployment's)."""
    new_model: str
    """The name the new colour serves (the new spec's api model)."""
    share: float
    window_s: float
    peers: list[str] = Field(default_factory=list)
    """The other gateways on the server's host that route to it: this gateway (the one with
    the lowest name, `leads`) sends their share too and watches their traffic."""


def leads(name: str, routing: list[str]) -> bool:
    """Of the gateways on a canary server's host that route to it, the one with the lowest
    name runs the canary for all of them (pure: each one's observe agrees without talking)."""
    return name == min([name, *routing])


class CanaryObserved(GatewayObserved):
    """The gateway's observed facts, plus the servers that wait for a canary."""

    canaries: dict[str, CanaryTarget] = Field(default_factory=dict)


@dataclass(frozen=True)
class CanaryStep(StepData):
    """A canary step's payload: the server, its colours and the configs to load."""

    server: str = ""
    live: str = ""
    new: str = ""
    new_port: int = 0
    new_model: str = ""
    share: float = 0.0
    peers: tuple[str, ...] = ()
    """The other gateways this one routes, watches and routes back with it (their configs are
    generated from the lab when the step runs: canaryrun.py)."""
    config: str = ""
    """canary-route: the weighted config; canary-watch (to route back on a failed gate) and
    canary-promote: the config with one route per server."""
    hash: str | None = None


def canary_config(config: dict[str, Any], server: str, target: CanaryTarget) -> dict[str, Any]:
    """The gateway's config with `share` of each of the server's deployments' traffic sent to
    the new colour (same model group, same prices and timeout; its own deployment id). The
    spec keeps the share within 0.001..0.999, so neither weight is 0."""
    found = copy.deepcopy(config)
    added = []
    for deployment in found["model_list"]:
        if deployment["model_info"].get("llmops_server") != server:
            continue
        deployment["litellm_params"]["weight"] = WEIGHTS - round(target.share * WEIGHTS)
        canary = copy.deepcopy(deployment)
        canary["litellm_params"].update({
            "model": f"hosted_vllm/{target.new_model}",
            "api_base": f"http://127.0.0.1:{target.new_port}/v1",
            "weight": round(target.share * WEIGHTS),
        })
        canary["model_info"]["id"] += CANARY_SUFFIX
        canary["model_info"]["llmops_colour"] = target.new
        added.append(canary)
    found["model_list"].extend(added)
    return found


def canary_steps(spec: GatewaySpec, backends: dict[str, Backend], observed: GatewayObserved,
                 plain: str) -> list[Step]:
    """route, watch, promote for each server of the spec whose canary waits; `plain`: the
    config text with one route per server (what the plan writes otherwise)."""
    canaries = getattr(observed, "canaries", None) or {}
    want = marker_of(plain)
    steps: list[Step] = []
    for server in spec.servers():
        target = canaries.get(server)
        if target is None:
            continue
        text = text_of(canary_config(config_dict(spec, backends), server, target),
                       observed.hooks_source)
        base = {"server": server, "live": target.live, "new": target.new,
                "new_port": target.new_port, "new_model": target.new_model,
                "share": target.share, "peers": tuple(target.peers)}
        new_proc, live_proc = f"{server}-{target.new}", f"{server}-{target.live}"
        names = " and ".join([spec.name, *target.peers])
        steps += [
            Step("canary-route", f"send {target.share:.0%} of {names}'s traffic for "
                 f"{server} to {new_proc} (HUP)", (),
                 CanaryStep(**base, config=text, hash=marker_of(text))),
            Step("canary-watch", f"watch {new_proc} against {live_proc} for "
                 f"{target.window_s:g}s: TTFT p95, ITL p95, errors; a failed gate routes "
                 f"back and stops {new_proc}", (),
                 CanaryStep(**base, config=plain, hash=want)),
            Step("canary-promote", f"switch {server}'s live port to {new_proc}; "
                 f"{spec.name} back to one route (HUP)", (),
                 CanaryStep(**base, config=plain, hash=want)),
        ]
    return steps
