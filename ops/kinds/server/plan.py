"""The server kind's pure plan: (desired, current, observed facts) -> steps with argv.

Kept apart from the kind's spec so it can be tested from data files
(`tests/cases/server/*.toml`) and read in one sitting."""

from __future__ import annotations

from typing import Any

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.server.canary import gates_of, newer
from llmops.ops.kinds.server.launch import is_path_model, launch_hash, vllm_argv, vllm_env
from llmops.ops.kinds.server.observed import ProcObserved, ServerObserved, ServerStep
from llmops.ops.kinds.server.spec import COLOURS, ServerSpec

LEFTOVERS = "end what the crashed process left running"


def _start_steps(
    spec: ServerSpec, facts: dict[str, Any], proc: str, port: int, why: str
) -> list[Step]:
    argv = vllm_argv(spec, facts, port=port)
    colour = next((c for c in COLOURS if proc == f"{spec.name}-{c}"), None)
    env = vllm_env(spec, facts, colour)
    data = ServerStep(proc=proc, port=port, env=env, hash=launch_hash(spec, facts))
    at = ServerStep(proc=proc, port=port)
    return [
        Step("start", f"start {proc} on port {port} ({why})", tuple(argv), data),
        Step("wait-ready", f"wait for /health of {proc}", (), at),
        Step("smoke", f"a completion from {proc}", (), at),
    ]


def _stop(proc: str, why: str) -> Step:
    return Step("stop", f"stop {proc} ({why})", (), ServerStep(proc=proc))


def plan_server(
    desired: ServerSpec | None, current: ServerSpec | None, observed: ServerObserved
) -> list[Step]:
    """Steps from what runs (observed) to what is desired; None desired = remove."""
    spec = desired or current
    if spec is None:
        return []
    name = spec.name
    all_procs = [f"{name}-live", *(f"{name}-{c}" for c in COLOURS), name]
    if desired is None:
        steps = [
            _stop(p, "server removed" if observed.proc(p).running else LEFTOVERS)
            for p in all_procs
            if observed.proc(p).running or observed.proc(p).crashed
        ]
        return [*steps, Step("forget", f"remove the state of {name} on its host")]
    facts = observed.facts
    if desired.strategy == "recreate":
        return _plan_recreate(desired, facts, observed)
    return _plan_colours(desired, facts, observed)


def _model_steps(spec: ServerSpec) -> list[Step]:
    """First, before anything stops: the path is there, or the hub weights are fetched."""
    if is_path_model(spec.model):
        return [Step("check-model", f"{spec.model} exists on {spec.host}", (), ServerStep())]
    revision = spec.args.get("revision")
    return [
        Step(
            "fetch-weights",
            f"weights of {spec.model} into the HF cache of {spec.host}",
            (),
            ServerStep(model=spec.model, revision=revision),
        )
    ]


def _plan_recreate(spec: ServerSpec, facts: dict[str, Any], observed: ServerObserved) -> list[Step]:
    name = spec.name
    want = launch_hash(spec, facts)
    proc = observed.proc(name)
    leftovers = [
        p for p in (f"{name}-live", *(f"{name}-{c}" for c in COLOURS)) if observed.proc(p).running
    ]
    stops = [_stop(p, "strategy is now recreate") for p in leftovers]
    moved = proc.port is not None and proc.port != spec.port  # the hash leaves the port out
    if proc.running and proc.hash == want and not moved:
        return stops
    if proc.running:
        why = f"port {proc.port} -> {spec.port}" if proc.hash == want else "spec changed"
        stops.append(_stop(name, why))
    elif proc.hash:
        why = "it had exited" if proc.exit_code == 0 else "it had crashed"
        if proc.crashed:
            stops.append(_stop(name, LEFTOVERS))
    else:
        why = "new"
    return [*_model_steps(spec), *stops, *_start_steps(spec, facts, name, spec.port, why)]


def _plan_colours(spec: ServerSpec, facts: dict[str, Any], observed: ServerObserved) -> list[Step]:
    name = spec.name
    want = launch_hash(spec, facts)
    standby = spec.strategy == "standby"
    fwd = observed.proc(f"{name}-live")
    fwd_running = fwd.running
    live = observed.live if fwd_running else None
    state = {c: observed.proc(f"{name}-{c}") for c in COLOURS}
    order = [live] + [c for c in COLOURS if c != live] if live else list(COLOURS)
    good = [c for c in order if state[c].running and state[c].hash == want]
    plain = [_stop(name, "replaced by the live forwarder")] if observed.proc(name).running else []
    refwd = _forwarder_moved(spec, fwd) if fwd_running else []
    fwd_running = fwd_running and not refwd
    # a canary needs a live colour serving behind a forwarder that stays; else as blue-green
    canary = (spec.strategy == "canary" and fwd_running and live is not None
              and state[live].running)

    if good:
        target = good[0]
        idle = COLOURS[1 - COLOURS.index(target)]
        steps: list[Step] = []
        if target == live:
            return [
                *_settle_live(spec, state, live, idle, observed),
                *plain,
                *refwd,
                *([] if fwd_running else [_start_forwarder(spec)]),
            ]
        if canary and live and newer(state[target], state[live]):
            return [*plain, _hold(spec, target)]
        if standby and live and _awake(state[live]):
            steps.append(_sleep(spec, live, "to free its GPU memory for the other colour"))
        if standby and _maybe_asleep(state[target]):
            steps.append(_wake(spec, target, "it becomes live"))
        return [*steps, *plain, *refwd, *_switch(spec, target, live, fwd_running)]

    new = COLOURS[1 - COLOURS.index(live)] if live else "blue"
    steps = [*_model_steps(spec)]
    if standby and live and _awake(state[live]):
        steps.append(_sleep(spec, live, "to free its GPU memory"))
    if state[new].running:
        steps.append(_stop(f"{name}-{new}", "stale colour"))
    steps += _start_steps(
        spec, facts, f"{name}-{new}", spec.colour_port(new), f"{new}, not live yet"
    )
    if canary:
        return [*steps, *plain, _hold(spec, new)]
    return [*steps, *plain, *refwd, *_switch(spec, new, live, fwd_running)]


def _hold(spec: ServerSpec, colour: str) -> Step:
    """A canary's new colour is not switched to here: the gateways on the host that route to
    the server run its canary in the same action (ops/kinds/gateway/canaryrun.py) and switch
    the live port when its gate passes."""
    gates = gates_of(spec)
    return Step(
        "canary-hold",
        f"{spec.name}-{colour} waits for its canary: {gates.share:.0%} of its gateways' "
        f"traffic for {gates.window_s:g}s, then promoted or stopped",
        (),
        ServerStep(proc=f"{spec.name}-{colour}", colour=colour, port=spec.colour_port(colour)),
    )


def _settle_live(
    spec: ServerSpec,
    state: dict[str, ProcObserved],
    live: str,
    idle: str,
    observed: ServerObserved,
) -> list[Step]:
    """The live colour already runs the wanted spec: end an idle colour past its grace and,
    for standby, anything awake beside it (a change that failed half-way leaves the new
    colour awake and the live one asleep), then wake the live one."""
    name = spec.name
    until = observed.idle_until
    expired = until is None or observed.now >= until
    steps: list[Step] = []
    if state[idle].running and expired:
        steps.append(_stop(f"{name}-{idle}", "grace period over"))
    elif spec.strategy == "standby" and _awake(state[idle]):
        steps.append(_stop(f"{name}-{idle}", "awake beside the live colour, holding its GPU"))
    if spec.strategy == "standby" and _maybe_asleep(state[live]):
        steps.append(_wake(spec, live, "live but maybe asleep"))
    return steps


def _awake(proc: ProcObserved) -> bool:
    """Running and not known to be asleep (sleeping again is a no-op in vLLM)."""
    return proc.running and proc.sleeping is not True


def _maybe_asleep(proc: ProcObserved) -> bool:
    """Asleep, or unknown (the probe failed): waking an awake server is a no-op in vLLM,
    leaving a sleeping one live is an outage, so only a known `sleeping = false` skips it."""
    return proc.running and proc.sleeping is not False


def _sleep(spec: ServerSpec, colour: str, why: str) -> Step:
    proc = f"{spec.name}-{colour}"
    port = spec.colour_port(colour)
    return Step("sleep", f"put {proc} to sleep ({why})", (), ServerStep(proc=proc, port=port))


def _wake(spec: ServerSpec, colour: str, why: str) -> Step:
    proc = f"{spec.name}-{colour}"
    port = spec.colour_port(colour)
    return Step("wake", f"wake {proc} ({why})", (), ServerStep(proc=proc, port=port))


def _forwarder_moved(spec: ServerSpec, fwd: ProcObserved) -> list[Step]:
    """The forwarder is the only process on `listen`/`port`: a change of either restarts
    it alone (the colours stay on loopback, untouched). Unrecorded values count as same."""
    moved = [
        f"{key} {was} -> {getattr(spec, key)}"
        for key, was in (("listen", fwd.listen), ("port", fwd.port))
        if was is not None and was != getattr(spec, key)
    ]
    return [_stop(f"{spec.name}-live", ", ".join(moved))] if moved else []


def _start_forwarder(spec: ServerSpec) -> Step:
    return Step(
        "start-forwarder",
        f"start {spec.name}-live on {spec.listen}:{spec.port}",
        (),
        ServerStep(proc=f"{spec.name}-live", port=spec.port, listen=spec.listen),
    )


def _switch(spec: ServerSpec, target: str, live: str | None, fwd_running: bool) -> list[Step]:
    """Point the live port at `target`; the old colour stays warm for grace_minutes."""
    name = spec.name
    steps = [
        Step(
            "switch",
            f"live port {spec.port} -> {name}-{target}",
            (),
            ServerStep(colour=target, port=spec.colour_port(target), previous=live),
        )
    ]
    if not fwd_running:
        steps.append(_start_forwarder(spec))
    if live and live != target and spec.grace_minutes == 0:
        steps.append(_stop(f"{name}-{live}", "no grace period"))
    return steps
