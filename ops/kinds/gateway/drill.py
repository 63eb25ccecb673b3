"""The fallback drill (issue 15 item 5): does each model's fallback answer when its primary
servers are gone? Checked on a drill, never on production: a second LiteLLM proxy
(`<name>-drill`, on another port, its own folder and usage lines) from the same venv, with the
gateway's config except that the drilled model's own servers point at a closed port
(127.0.0.1:1, refused at once). One prompt per model with fallbacks goes through it and must
be answered by a server of a fallback model, with LiteLLM's attempted-fallbacks header set.
The drill proxy is stopped and forgotten after; the production gateway, its servers and the
lab are untouched (nothing journalled: like `try`, it changes nothing)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Check, SpecError, Step
from llmops.ops.kinds.gateway import apply as gateway_apply
from llmops.ops.kinds.gateway.client import gateway_client
from llmops.ops.kinds.gateway.config import Backend, config_text, marker_of
from llmops.ops.kinds.gateway.launch import litellm_argv, litellm_env
from llmops.ops.kinds.gateway.observed import GatewayStep
from llmops.ops.kinds.gateway.spec import GatewaySpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

DEAD_BASE = "http://127.0.0.1:1/v1"
"""Where a drilled model's own servers point: port 1 on loopback, refused at once."""


def drill_spec(spec: GatewaySpec, port: int) -> GatewaySpec:
    """(pure) The drill proxy: the gateway's spec under `<name>-drill` on `port`, no cache
    (a cached answer would hide the fallback)."""
    return spec.model_copy(update={"name": f"{spec.name}-drill", "port": port, "cache": False})


def drilled_backends(spec: GatewaySpec, backends: dict[str, Backend], model: str
                     ) -> dict[str, Backend]:
    """(pure) `backends` with `model`'s own servers at DEAD_BASE; a server its fallbacks use
    too is refused (the drill could not tell the two apart)."""
    dead = set(spec.models[model])
    shared = dead & {s for f in spec.fallbacks.get(model, []) for s in spec.models[f]}
    if shared:
        raise SpecError(f"fallbacks.{model}", f"server {', '.join(sorted(shared))} serves "
                        f"{model} and its fallback: stopping it in a drill stops both",
                        "route the fallback model to other servers")
    return {name: Backend(name, DEAD_BASE, b.api_model) if name in dead else b
            for name, b in backends.items()}


def fallback_drill(spec: GatewaySpec, hosts: HostPool, port: int, prompt: str = "drill"
                   ) -> dict[str, Any]:
    """For each model with fallbacks: start the drill proxy with that model's servers dead,
    ask it once, stop it. {model: {ok, server, api_base, fallbacks, status, error}}."""
    if not spec.fallbacks:
        raise SpecError("fallbacks", f"{spec.name} has no fallbacks to drill",
                        "add one: llmops gateway up NAME --fallback chat=code")
    t, facts = hosts.transport(spec.host), gateway_apply.gateway_facts(spec, hosts)
    seen = gateway_apply.resolve(spec, hosts)
    errors = [f"{n}: {s.error}" for n, s in seen.items() if s.error]
    if errors:
        raise SpecError("models", f"cannot resolve every server: {'; '.join(errors)}",
                        "see `llmops server list`")
    backends = {n: Backend(n, s.api_base or "", s.api_model or "") for n, s in seen.items()}
    served = {b.api_base: name for name, b in backends.items()}
    drill = drill_spec(spec, port)
    results: dict[str, Any] = {}
    for model in spec.fallbacks:
        text = config_text(drill, drilled_backends(spec, backends, model),
                           gateway_apply.hooks_source())
        want = marker_of(text)
        began = time.monotonic()
        try:
            for step in (Step("write-config", "", (), GatewayStep(config=text, hash=want)),
                         Step("start", "", tuple(litellm_argv(drill, facts)),
                              GatewayStep(proc=drill.proc_name(), hash=want,
                                          env=litellm_env(drill, facts))),
                         Step("wait-ready", "", (), GatewayStep(proc=drill.proc_name(),
                                                                hash=want))):
                gateway_apply.apply(step, drill, hosts, lambda _line: None)
            with gateway_client(drill, hosts, timeout=120.0) as client:
                answer = client.chat(model, f"{prompt} ({model})", 4).to_dict()
        finally:
            procs.stop(t, drill.proc_name())
            gateway_apply.apply(Step("forget", "", (), GatewayStep()), drill, hosts,
                                lambda _line: None)
        server = served.get(answer["api_base"])
        expected = {s for f in spec.fallbacks[model] for s in spec.models[f]}
        results[model] = {
            "ok": bool(answer["ok"] and server in expected and answer["fallbacks"] >= 1),
            "server": server, "api_base": answer["api_base"], "fallbacks": answer["fallbacks"],
            "expected": sorted(expected), "status": answer["status"], "error": answer["error"],
            "seconds": round(time.monotonic() - began, 2)}
    return results


def drill_checks(spec: GatewaySpec, hosts: HostPool, port: int | None = None) -> list[Check]:
    """The drill as checks (`fallback <model> (drill)`), run after a rollback of the gateway
    (issue 15 item 5: "a fallback works when its primary is stopped, checked on a drill, not
    on production traffic"): none when the spec has no fallbacks; a drill that cannot run is
    a failed check, never a crash."""
    if not spec.fallbacks:
        return []
    began = time.monotonic()
    try:
        found = fallback_drill(spec, hosts, port or spec.port + 1)
    except Exception as exc:  # noqa: BLE001 - a drill that cannot run is a failed check
        return [Check(f"fallback {model} (drill)", False, f"the drill did not run: "
                      f"{type(exc).__name__}: {exc}"[:500], round(time.monotonic() - began, 3))
                for model in spec.fallbacks]
    checks = []
    for model, r in found.items():
        detail = (f"{model}'s servers dead on a drill proxy: answered by {r['server'] or '?'} "
                  f"({r['api_base'] or '-'}, fallbacks {r['fallbacks']}; expects one of "
                  f"{', '.join(r['expected'])})" if r["status"] == 200 else
                  f"{model}'s servers dead on a drill proxy: HTTP {r['status']}: "
                  f"{str(r['error'])[:200]}")
        checks.append(Check(f"fallback {model} (drill)", bool(r["ok"]), detail[:500],
                            float(r["seconds"])))
    return checks
