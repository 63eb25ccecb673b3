"""The one place that knows LiteLLM's config: generated from the gateway's spec and the lab's
servers (pure), so a plan case shows exactly what the proxy will read.

Each server a model names becomes one deployment (`hosted_vllm/<its model>` at the address
that reaches its port from the gateway's host: loopback on the same host, the server host's
address when the server listens beyond loopback). Prices are per token as LiteLLM wants them
(the spec holds them per million). The file is JSON, which YAML reads as is. The master key
is `os.environ/<NAME>`: its value reaches LiteLLM through the process's environment only; the
key check is llmops' own (`custom_auth`), against that same key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec

HOOKS_MODULE = "gateway_hooks"
"""The callbacks module llmops ships (ops/hostside/gateway_hooks.py), beside the config."""
USAGE_CALLBACK = f"{HOOKS_MODULE}.usage_log"
GUARD_CLASS = f"{HOOKS_MODULE}.SafetyGuard"
KEY_CHECK = f"{HOOKS_MODULE}.master_key_auth"
"""The key check in place of LiteLLM's (gateway_patches.master_key_auth): the same master key,
compared in constant time, without the virtual-key checks a DB-less proxy cannot use; 401."""
GUARD_NAME = "llmops-safety"
LOOPBACKS = ("127.0.0.1", "::1", "localhost")


class Unreachable(ValueError):
    """A server the gateway cannot reach from its host; the message says why and the fix."""


@dataclass(frozen=True)
class Backend:
    """One server as the gateway reaches it: its OpenAI base URL and the model name it serves;
    `tunnel` (the local port) when it is reached through the gateway's tunnel (tunnels.py)."""

    server: str
    api_base: str
    api_model: str
    tunnel: int | None = None


def backend_for(gateway_host: str, server: ServerSpec, server_address: str | None,
                server_local: bool, *, gateway_local: bool = False,
                tunnel_port: int | None = None) -> Backend:
    """How the gateway on `gateway_host` reaches `server` (its live port): loopback on the same
    host; across hosts, the address the server listens on beyond loopback (its host's address
    for a wildcard), or, for a server on loopback only, the gateway's SSH tunnel to it when the
    gateway runs on this machine (`gateway_local`: where the lab's SSH key is)."""
    reach = reach_address(server)
    if server.host != gateway_host:
        if server.listen in LOOPBACKS:
            if gateway_local and tunnel_port and server_address and not server_local:
                return Backend(server.name, f"http://127.0.0.1:{tunnel_port}/v1",
                               server.api_model(), tunnel_port)
            tunnel = "" if server_local else " or on this machine (a tunnel over SSH)"
            raise Unreachable(
                f"server {server.name} listens on {server.listen} of host {server.host}, which "
                f"the gateway on {gateway_host} cannot reach: run the gateway on {server.host}"
                f"{tunnel}, or let the server listen on 0.0.0.0"
            )
        if server.listen in ("0.0.0.0", "::"):
            if server_local or not server_address:
                raise Unreachable(
                    f"server {server.name} is on host {server.host}, which has no address the "
                    f"gateway on {gateway_host} can use: run the gateway on {server.host}"
                )
            reach = server_address
    host = f"[{reach}]" if ":" in reach else reach
    return Backend(server.name, f"http://{host}:{server.port}/v1", server.api_model())


def config_dict(spec: GatewaySpec, backends: dict[str, Backend]) -> dict[str, Any]:
    """LiteLLM's config for the spec, every server resolved in `backends` (KeyError if not)."""
    model_list = []
    for model, servers in spec.models.items():
        for server in servers:
            b = backends[server]
            params: dict[str, Any] = {
                "model": f"hosted_vllm/{b.api_model}",
                "api_base": b.api_base,
                "timeout": spec.timeout_s,
            }
            price = spec.prices.get(server)
            if price is not None:
                params["input_cost_per_token"] = price.input_per_1m / 1_000_000
                params["output_cost_per_token"] = price.output_per_1m / 1_000_000
            model_list.append({"model_name": model, "litellm_params": params,
                               "model_info": {"id": f"{model}.{server}",
                                              "llmops_server": server}})
    router: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": spec.num_retries,
        "allowed_fails": spec.allowed_fails,
        "cooldown_time": spec.cooldown_s,
        "timeout": spec.timeout_s,
    }
    if spec.fallbacks:
        router["fallbacks"] = [{m: list(others)} for m, others in spec.fallbacks.items()]
    settings: dict[str, Any] = {"callbacks": [USAGE_CALLBACK], "drop_params": True}
    if spec.cache:
        settings |= {"cache": True, "cache_params": {"type": "local", "ttl": spec.cache_ttl_s}}
    config = {
        "model_list": model_list,
        "router_settings": router,
        "litellm_settings": settings,
        "general_settings": {"master_key": f"os.environ/{spec.master_key_env}",
                             "custom_auth": KEY_CHECK},
    }
    if spec.guardrails or spec.guards:  # on by default; the guard skips the other models
        params = {"guardrail": GUARD_CLASS, "mode": ["pre_call", "post_call"],
                  "default_on": True, "llmops_models": list(spec.guardrails)}
        if spec.guards:
            params["llmops_guards"] = guards_of(spec, backends)
        config["guardrails"] = [{"guardrail_name": GUARD_NAME, "litellm_params": params}]
    return config


def classify_url(api_base: str) -> str:
    """vLLM's classification endpoint beside a server's OpenAI base (`/classify`, not /v1)."""
    return api_base.removesuffix("/").removesuffix("/v1") + "/classify"


def guards_of(spec: GatewaySpec, backends: dict[str, Backend]) -> dict[str, dict[str, Any]]:
    """What the guardrail needs per guarded model: the classifier's URL and model name, the
    label and threshold that block, what a failure does, its timeout."""
    found = {}
    for model, guard in spec.guards.items():
        b = backends[guard.server]
        found[model] = {"server": guard.server, "url": classify_url(b.api_base),
                        "model": b.api_model, "label": guard.label,
                        "threshold": guard.threshold, "on_error": guard.on_error,
                        "timeout_s": guard.timeout_s}
    return found


def config_text(spec: GatewaySpec, backends: dict[str, Backend], hooks_source: str) -> str:
    """The file LiteLLM reads, with its hash in every deployment's model_info (so a check can
    ask the running proxy which config it loaded: /model/info)."""
    return text_of(config_dict(spec, backends), hooks_source)


def text_of(config: dict[str, Any], hooks_source: str) -> str:
    """A config as the file holds it, its hash stamped into every deployment."""
    marker = content_hash(json.dumps(config, sort_keys=True), hooks_source)
    for deployment in config["model_list"]:
        deployment["model_info"]["llmops_config"] = marker
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def content_hash(config: str, hooks_source: str) -> str:
    return hashlib.sha256((config + "\0" + hooks_source).encode()).hexdigest()[:16]


def marker_of(text: str) -> str | None:
    """The config hash a config file carries (None: not one llmops wrote)."""
    try:
        data = json.loads(text)
        return str(data["model_list"][0]["model_info"]["llmops_config"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def api_bases(spec: GatewaySpec, backends: dict[str, Backend], model: str) -> list[str]:
    """The backends a model name may be answered by (its servers'), for the checklist."""
    return [backends[s].api_base for s in spec.models[model]]
