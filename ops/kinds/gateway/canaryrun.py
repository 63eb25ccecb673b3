"""A server's canary through its gateway, on the hosts: observe which servers wait for one,
then the steps canary-route, canary-watch and canary-promote (canary.py says why and how;
the gate itself is pure, ops/kinds/server/canary.py).

The watch scrapes both colours' /metrics on their loopback ports (each colour is its own
vLLM) every few seconds and reads the gateway's new usage lines (which deployment answered or
failed); a progress line per tick carries both colours' figures, so the console's action
screen shows the canary live. A failed gate (or the canary going down) routes the gateway
back to one route, stops the new colour and raises with the verdict: the action fails and
reverts (the server's revert finds the old colour live: nothing to do)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.base import Progress, Step
from llmops.ops.kinds.gateway import apply as gateway_apply
from llmops.ops.kinds.gateway.canary import (
    CanaryObserved,
    CanaryStep,
    CanaryTarget,
    canary_config,
    leads,
)
from llmops.ops.kinds.gateway.config import Backend, config_dict, marker_of, text_of
from llmops.ops.kinds.gateway.launch import FOLDER, usage_path
from llmops.ops.kinds.gateway.observed import GatewayObserved, GatewayStep
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.gateway.usage import parse, read_lines
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.server import apply as server_apply
from llmops.ops.kinds.server import canary as gate
from llmops.ops.kinds.server.client import MetricsSnapshot, VllmClient
from llmops.ops.kinds.server.kind import ServerKind
from llmops.ops.kinds.server.launch import launch_hash
from llmops.ops.kinds.server.observed import ServerStep
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

TICK_S = 5.0
"""A progress line with both colours' figures this often (or 4 per window when shorter)."""


class CanaryRejected(RuntimeError):
    """The gate said roll back; the message is its verdict (journalled as the step's error)."""


def gateways_on_host(spec: GatewaySpec, hosts: HostPool) -> list[GatewaySpec]:
    """The other gateways of the lab on this gateway's host (each keeps its record in
    <workdir>/gateways/NAME.json there), as the lab wants them."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    done = t.run(["find", f"{facts['workdir']}/{FOLDER}", "-maxdepth", "1", "-name", "*.json"],
                 timeout=30)
    found = []
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        name = line.rsplit("/", 1)[-1].removesuffix(".json")
        other = hosts.desired("gateway", name) if name != spec.name else None
        if isinstance(other, GatewaySpec) and other.host == spec.host:
            found.append(other)
    return sorted(found, key=lambda g: g.name)


def observe(observed: GatewayObserved, spec: GatewaySpec, hosts: HostPool) -> CanaryObserved:
    """The gateway's facts, plus each server on its host (strategy canary) whose new colour
    waits for its canary, when this gateway leads it (the lowest name of those on the host
    routing to it: `leads`); the others are its peers."""
    canaries: dict[str, CanaryTarget] = {}
    others: list[GatewaySpec] | None = None
    for name in spec.servers():
        server = hosts.desired("server", name)
        if not isinstance(server, ServerSpec) or server.strategy != "canary" \
                or server.host != spec.host:
            continue
        seen = ServerKind().observe(server, hosts)
        colour = gate.pending_colour(server, seen, launch_hash(server, seen.facts))
        if colour is None or seen.live is None:
            continue
        others = gateways_on_host(spec, hosts) if others is None else others
        peers = [g.name for g in others if name in g.servers()]
        if not leads(spec.name, peers):
            continue  # the leader sends and watches this gateway's share too
        gates = gate.gates_of(server)
        canaries[name] = CanaryTarget(
            live=seen.live, new=colour, new_port=server.colour_port(colour),
            new_model=server.api_model(), share=gates.share, window_s=gates.window_s,
            peers=peers)
    return CanaryObserved(**observed.model_dump(), canaries=canaries)


def peer_config(hosts: HostPool, name: str, data: CanaryStep, weighted: bool
                ) -> tuple[GatewaySpec, str, str | None]:
    """A peer gateway, and its config as the lab generates it: with the canary's share
    (`weighted`) or one route per server (what its own plan wants)."""
    peer = hosts.desired("gateway", name)
    if not isinstance(peer, GatewaySpec):
        raise CanaryRejected(f"gateway {name} (a peer of this canary) is not in the lab")
    seen = gateway_apply.resolve(peer, hosts)
    backends = {n: Backend(n, str(b.api_base), str(b.api_model)) for n, b in seen.items()
                if not b.error}
    config = config_dict(peer, backends)
    if weighted:
        config = canary_config(config, data.server, CanaryTarget(
            live=data.live, new=data.new, new_port=data.new_port, new_model=data.new_model,
            share=data.share, window_s=0))
    text = text_of(config, gateway_apply.hooks_source())
    return peer, text, marker_of(text)


def load_all(spec: GatewaySpec, hosts: HostPool, data: CanaryStep, weighted: bool,
             progress: Progress) -> None:
    """This gateway's config of the step, then each peer's (weighted or one route)."""
    load(spec, hosts, data.config, data.hash, progress)
    for name in data.peers:
        peer, text, marker = peer_config(hosts, name, data, weighted)
        load(peer, hosts, text, marker, progress)


def payload(step: Step) -> CanaryStep:
    assert isinstance(step.data, CanaryStep), step
    return step.data


def server_of(hosts: HostPool, name: str) -> ServerSpec:
    server = hosts.desired("server", name)
    assert isinstance(server, ServerSpec), name
    return server


def apply(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def load(spec: GatewaySpec, hosts: HostPool, text: str, marker: str | None,
         progress: Progress) -> None:
    """Write a config, HUP the proxy, wait until it answers on that config (the kind's own
    write-config, reload and wait-ready steps)."""
    proc = spec.proc_name()
    for verb, data in (("write-config", GatewayStep(config=text, hash=marker)),
                       ("reload", GatewayStep(proc=proc, hash=marker)),
                       ("wait-ready", GatewayStep(proc=proc, hash=marker))):
        gateway_apply.apply(Step(verb, verb, (), data), spec, hosts, progress)


def _route(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
           ) -> dict[str, Any]:
    data = payload(step)
    load_all(spec, hosts, data, True, progress)
    names = " and ".join([spec.name, *data.peers])
    progress(f"{names} send a share of {data.server}'s traffic to "
             f"{data.server}-{data.new} (config {data.hash})")
    return {"canary_config": data.hash, "gateways": [spec.name, *data.peers]}


def _promote(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
             ) -> dict[str, Any]:
    data = payload(step)
    server = server_of(hosts, data.server)
    server_apply.apply(
        Step("switch", "promote", (), ServerStep(colour=data.new, port=data.new_port,
                                                 previous=data.live)),
        server, hosts, progress)
    load_all(spec, hosts, data, False, progress)
    progress(f"{data.server}-{data.new} promoted: live port {server.port} switched to it; "
             f"{spec.name} back to one route per server; {data.server}-{data.live} kept for "
             f"the grace ({server.grace_minutes:g} min)")
    return {"promoted": f"{data.server}-{data.new}"}


def _end_offset(t: Transport, path: str) -> int:
    done = t.run(["stat", "-c", "%s", path], timeout=30)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def _scrape(client: VllmClient) -> MetricsSnapshot | None:
    try:
        return client.metrics(gate.FAMILIES)
    except (httpx.HTTPError, OSError, ValueError):
        return None


def _watch(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
           ) -> dict[str, Any]:
    """The window: both colours scraped each tick, a progress line with both; the gate at
    the end (or at once when the canary is down or its errors already break the gate)."""
    data = payload(step)
    server = server_of(hosts, data.server)
    gates = gate.gates_of(server)
    t = hosts.transport(server.host)
    facts = host_facts(hosts, spec.host)
    peers = [hosts.desired("gateway", n) for n in data.peers]
    offsets = {path: _end_offset(t, path) for path in
               [usage_path(g, facts) for g in [spec, *peers] if isinstance(g, GatewaySpec)]}
    live_port = server.colour_port(data.live)
    tick = min(TICK_S, max(1.0, gates.window_s / 4))
    records: list[dict[str, Any]] = []
    new_name, live_name = f"{data.server}-{data.new}", f"{data.server}-{data.live}"
    with t.forward(live_port) as lp, t.forward(data.new_port) as np_, \
            VllmClient(f"http://127.0.0.1:{lp}", server.api_model(), timeout=10) as live_c, \
            VllmClient(f"http://127.0.0.1:{np_}", server.api_model(), timeout=10) as new_c:
        live0, new0 = _scrape(live_c), _scrape(new_c)
        if live0 is None or new0 is None:
            down = live_name if live0 is None else new_name
            return _reject(spec, hosts, data, progress,
                           f"canary gate: ROLL BACK: {down}'s /metrics does not answer at "
                           "the start of the window", {})
        began, down_scrapes = time.monotonic(), 0
        live_f = new_f = gate.ColourFigures()
        verdict = None
        while verdict is None:
            time.sleep(max(0.0, min(tick, gates.window_s - (time.monotonic() - began))))
            live1, new1 = _scrape(live_c), _scrape(new_c)
            down_scrapes = down_scrapes + 1 if new1 is None else 0
            for path, offset in offsets.items():  # every routing gateway's lines
                try:
                    lines, offsets[path] = read_lines(t, path, offset)
                    records += parse(lines)
                except (TransportError, ValueError):
                    pass  # the gateway's lines are read again at the next tick
            live_f = gate.figures(live0, live1, records, server.port)
            new_f = gate.figures(new0, new1, records, data.new_port)
            seconds = time.monotonic() - began
            progress(f"canary {seconds:4.0f}/{gates.window_s:g}s  {new_name}: {new_f.line()}  "
                     f"|  live {live_name}: {live_f.line()}")
            verdict = gate.early(gates, new_f, down_scrapes)
            if verdict is None and seconds >= gates.window_s:
                verdict = gate.decide(gates, live_f, new_f)
    figures = {"live": live_f.to_dict(), "canary": new_f.to_dict(), "verdict": verdict.text}
    if not verdict.promote:
        return _reject(spec, hosts, data, progress, verdict.text, figures)
    progress(verdict.text)
    return figures


def _reject(spec: GatewaySpec, hosts: HostPool, data: CanaryStep, progress: Progress,
            verdict: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Route back, stop the new colour, then fail with the verdict (the action reverts)."""
    progress(verdict)
    undone: list[str] = []
    try:
        load_all(spec, hosts, data, False, progress)
        progress(f"{' and '.join([spec.name, *data.peers])} back to one route for "
                 f"{data.server}")
    except Exception as exc:  # noqa: BLE001 - say it, and still stop the canary
        undone.append(f"routing back failed: {exc}")
    proc = f"{data.server}-{data.new}"
    try:
        server_apply.apply(Step("stop", "canary rolled back", (), ServerStep(proc=proc)),
                           server_of(hosts, data.server), hosts, progress)
    except Exception as exc:  # noqa: BLE001 - the revert's reconcile tries again
        undone.append(f"stopping {proc} failed: {exc}")
    live = (figures.get("live") or {}).get("requests")
    said = f" (live colour answered {live} requests in the window)" if live else ""
    raise CanaryRejected(verdict + said + ("; " + "; ".join(undone) if undone else ""))


HANDLERS: dict[str, Callable[..., Any]] = {
    "canary-route": _route,
    "canary-watch": _watch,
    "canary-promote": _promote,
}
