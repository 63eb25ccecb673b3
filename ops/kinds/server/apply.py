"""What the server kind does on a host: observe, preflight, carry out plan steps.

Thin on purpose: every decision is in the pure plan (`plan.py`); this file only runs it
through the transport, procs and the vLLM client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds import hoststate
from llmops.ops.kinds.base import Progress, Step
from llmops.ops.kinds.cluster import serving
from llmops.ops.kinds.hoststate import host_facts, port_answers
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.launch import reach_address, reach_for
from llmops.ops.kinds.server.memory import refuse_if_too_big
from llmops.ops.kinds.server.observed import ProcObserved, ServerObserved, ServerStep
from llmops.ops.kinds.server.smoke import smoke
from llmops.ops.kinds.server.spec import COLOURS, ServerSpec
from llmops.ops.kinds.server.weights import check_model, fetch_weights, model_config
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

LOG_PREFIX = re.compile(r"^\((\w+) pid=\d+\) (\w+) \d\d-\d\d [\d:]+ \[[^\]]+\] ")


class ServerStartError(RuntimeError):
    """vLLM did not come up; the message carries the last lines of its log."""


# -- the server's record on the host -------------------------------------------------------
FOLDER = "servers"


def target_path(facts: dict[str, Any], name: str) -> str:
    """The file the live forwarder reads for every new connection: the colour's port."""
    return hoststate.state_path(facts, FOLDER, name, ".live-port")


def read_state(t: Transport, facts: dict[str, Any], name: str) -> dict[str, Any]:
    """Launch hashes and ports of the server's processes, the live colour, the grace end."""
    return hoststate.read_state(t, facts, FOLDER, name)


def write_state(t: Transport, facts: dict[str, Any], name: str, state: dict[str, Any]) -> None:
    hoststate.write_state(t, facts, FOLDER, name, state)


def proc_names(name: str) -> list[str]:
    return [name, *(f"{name}-{c}" for c in COLOURS), f"{name}-live"]


def observe(spec: ServerSpec, hosts: HostPool) -> ServerObserved:
    """Which of the server's processes run, with what launch hash, and which colour is live."""
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    if spec.cluster:  # the launch reads the GCS address and this node's address
        facts["cluster"] = serving.launch_facts(spec.cluster, spec.host, hosts)
    state = read_state(t, facts, spec.name)
    mine = set(proc_names(spec.name))
    found: dict[str, ProcObserved] = {}
    for info in procs.list_procs(t):
        if info.name not in mine:
            continue
        rec = dict(state.get("procs", {}).get(info.name) or {})
        found[info.name] = ProcObserved.model_validate(
            {
                **rec,
                "running": info.running,
                "state": info.state,
                "exit_code": info.rc,
                "pid": info.pid,
            }
        )
    live = None
    try:
        port = int(t.read_text(target_path(facts, spec.name)).strip())
        live = next(
            (c for c in COLOURS if found.get(f"{spec.name}-{c}", NOT_FOUND).port == port), None
        )
    except (TransportError, OSError, ValueError):
        pass
    if spec.strategy == "standby":
        for c in COLOURS:
            p = found.get(f"{spec.name}-{c}")
            if p and p.running and p.port:
                p.sleeping = _is_sleeping(t, spec, p.port)
    return ServerObserved(
        facts=facts, procs=found, live=live, idle_until=state.get("idle_until"), now=time.time()
    )


NOT_FOUND = ProcObserved()


def payload(step: Step) -> ServerStep:
    """The step's payload, as the plan built it."""
    assert isinstance(step.data, ServerStep), step
    return step.data


def proc_of(step: Step) -> str:
    proc = payload(step).proc
    assert proc is not None, step
    return proc


def port_of(step: Step) -> int:
    port = payload(step).port
    assert port is not None, step
    return port


def _is_sleeping(t: Transport, spec: ServerSpec, port: int) -> bool | None:
    try:
        with t.forward(port) as local, client_at(local, spec) as client:
            return client.is_sleeping()
    except Exception:  # noqa: BLE001 - unknown is an answer here
        return None


def client_at(local_port: int, spec: ServerSpec, timeout: float = 60.0) -> VllmClient:
    return VllmClient(f"http://127.0.0.1:{local_port}", spec.api_model(), timeout=timeout)


def preflight(spec: ServerSpec, hosts: HostPool) -> None:
    """The path exists, and the weights fit: read-only, before the action is written."""
    t = hosts.transport(spec.host)
    check_model(spec, t)
    refuse_if_too_big(spec, host_facts(hosts, spec.host), model_config(spec, t))
    cluster = hosts.desired("cluster", spec.cluster) if spec.cluster else None
    if cluster is not None:  # every node: address, interface, versions, alive, room
        serving.preflight_server(cluster, spec.tp * spec.pp, hosts, server=spec.name,
                                 host=spec.host)


# -- apply --------------------------------------------------------------------------------
def apply(step: Step, spec: ServerSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    handler = HANDLERS[step.verb]
    try:
        return handler(step, spec, t, facts, progress) or {}
    except ServerStartError as exc:
        if not spec.cluster:
            raise
        raise ServerStartError(f"{exc}; cluster {spec.cluster}: "
                               f"{serving.launch_diagnostics(spec.cluster, hosts)}") from exc


def _check(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> None:
    check_model(spec, t)


def _fetch(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    found = fetch_weights(spec, t, progress)
    refuse_if_too_big(spec, facts, dict(found.get("config") or {}))
    progress(f"weights of {spec.model} ready at {found.get('path')}")
    return {"weights_path": found.get("path"), "weights_cached": found.get("cached")}


def _stop_proc(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    proc = proc_of(step)
    info = procs.stop(t, proc, grace=30.0)
    state = read_state(t, facts, spec.name)
    state.get("procs", {}).pop(proc, None)
    write_state(t, facts, spec.name, state)
    progress(f"{proc} stopped ({info.stopped}, {info.seconds}s)")
    return {"stopped": proc, "seconds": info.seconds}


def _start(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    proc, port = proc_of(step), port_of(step)
    if port_answers(t, port, reach_for(spec, proc)):
        raise ServerStartError(
            f"port {port} on {spec.host} is already in use; "
            "stop what listens there or pick another port"
        )
    state = read_state(t, facts, spec.name)
    state.setdefault("procs", {})[proc] = {
        "hash": payload(step).hash,
        "port": port,
        "started": time.time(),
    }
    write_state(t, facts, spec.name, state)
    info = procs.start(t, proc, list(step.argv), env=payload(step).env, cwd=facts["workdir"])
    progress(f"{proc} started, pid {info.pid}")
    return {"proc": proc, "pid": info.pid, "port": port}


def short_log_line(line: str) -> str:
    """vLLM's `(EngineCore pid=1) INFO 11-25 12:18:28 [x.py:1] text` -> `EngineCore: text`."""
    m = LOG_PREFIX.match(line)
    return f"{m.group(1)}: {line[m.end() :]}" if m else line


def wait_ready(
    t: Transport, spec: ServerSpec, proc: str, port: int, progress: Progress, timeout: float
) -> float:
    """Poll /health, showing new log lines; a process that died raises with its log tail."""
    started = time.monotonic()
    _lines, offset = procs.read_log(t, proc, 0)
    offset = _last_start_offset(t, proc, offset)
    with t.forward(port, reach_for(spec, proc)) as local, client_at(local, spec, 10.0) as client:
        while True:
            lines, offset = procs.read_log(t, proc, offset)
            for line in lines:
                progress(short_log_line(line)[:300])
            if client.health():
                return time.monotonic() - started
            info = procs.status(t, proc)
            if not info.running:
                raise start_failure(t, proc, f"exited while starting (rc {info.rc})", progress)
            if time.monotonic() - started > timeout:
                raise start_failure(
                    t, proc, f"not healthy after {timeout:.0f}s", progress, stuck=True
                )
            time.sleep(0.5)


CAUSE = re.compile(r"\berror:|Error\b|\bERROR\b|Exception\b|Killed")


def start_failure(
    t: Transport, proc: str, what: str, progress: Progress, stuck: bool = False
) -> ServerStartError:
    """One line for the operator (the cause, where the whole log is); the log's tail goes to
    the progress stream, so vLLM's usage text and tracebacks stay out of errors and commits.
    The cause is the last error line (warnings mentioning errors are not one), or, for a
    start that is stuck rather than dead, the last line: where it got to."""
    tail = [line for line in procs.tail(t, proc, 40) if line.strip()]
    for line in tail:
        progress(short_log_line(line)[:300])
    errors = [x for x in tail if CAUSE.search(x) and " WARNING " not in x and not stuck]
    causes = errors or tail[-1:]
    cause = short_log_line(causes[-1]).strip()[:240] if causes else "its log is empty"
    log = procs.status(t, proc).log or f"run/{proc}/log in the host's workdir"
    return ServerStartError(f"{proc} {what}: {cause} (whole log: {log} on {t.host})")


def _last_start_offset(t: Transport, proc: str, end: int) -> int:
    """Follow the log from this start's `--- start` marker, not from earlier runs."""
    tail = procs.tail(t, proc, 200)
    size = sum(len(line.encode()) + 1 for line in tail)
    for i in range(len(tail) - 1, -1, -1):
        if tail[i].startswith("--- start "):
            return max(0, end - sum(len(x.encode()) + 1 for x in tail[i:]))
    return max(0, end - size)


def _wait(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    seconds = wait_ready(
        t, spec, proc_of(step), port_of(step), progress, float(spec.start_timeout_s)
    )
    progress(f"{proc_of(step)} healthy after {seconds:.1f}s")
    return {"ready_seconds": round(seconds, 2)}


def _smoke(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    port, proc = port_of(step), proc_of(step)
    with t.forward(port, reach_for(spec, proc)) as local, client_at(local, spec) as client:
        return smoke(client, spec.args, progress)


def _switch(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """One atomic file write: the forwarder reads it for every new connection."""
    t.write_text(target_path(facts, spec.name), f"{port_of(step)}\n", mode=0o644)
    state = read_state(t, facts, spec.name)
    state["live"] = payload(step).colour
    state["idle_until"] = time.time() + spec.grace_minutes * 60
    write_state(t, facts, spec.name, state)
    progress(f"live port {spec.port} now serves {spec.name}-{payload(step).colour}")
    return {"live": payload(step).colour}


def _start_forwarder(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    script = f"{facts['workdir']}/bin/tcpfwd.py"
    t.write_text(script, files("llmops.ops.hostside").joinpath("tcpfwd.py").read_text(), mode=0o644)
    argv = [
        str(facts.get("python") or t.python),
        script,
        spec.listen,
        str(spec.port),
        target_path(facts, spec.name),
    ]
    proc = proc_of(step)
    state = read_state(t, facts, spec.name)
    state.setdefault("procs", {})[proc] = {"listen": spec.listen, "port": spec.port}
    write_state(t, facts, spec.name, state)
    info = procs.start(t, proc, argv, cwd=facts["workdir"])
    deadline = time.monotonic() + 10
    while not port_answers(t, spec.port, reach_address(spec)):
        if time.monotonic() > deadline or not procs.status(t, proc).running:
            raise start_failure(t, proc, f"did not listen on {spec.listen}:{spec.port}", progress)
        time.sleep(0.1)
    return {"forwarder_pid": info.pid}


def _sleep(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> None:
    with t.forward(port_of(step)) as local, client_at(local, spec, 300) as client:
        client.sleep(level=1)
    progress(f"{proc_of(step)} is asleep")


def _wake(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> None:
    with t.forward(port_of(step)) as local, client_at(local, spec, 300) as client:
        client.wake_up()
    progress(f"{proc_of(step)} is awake")


def _canary_hold(step: Step, *_: Any) -> dict[str, Any]:
    """Nothing to do on the host: the new colour runs; its gateways' canary decides."""
    return {"canary": payload(step).colour}


def _forget(
    step: Step, spec: ServerSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> None:
    t.run(
        ["rm", "-f", hoststate.state_path(facts, FOLDER, spec.name), target_path(facts, spec.name)],
        timeout=30,
    )


HANDLERS: dict[str, Callable[..., Any]] = {
    "check-model": _check,
    "fetch-weights": _fetch,
    "stop": _stop_proc,
    "start": _start,
    "wait-ready": _wait,
    "smoke": _smoke,
    "switch": _switch,
    "start-forwarder": _start_forwarder,
    "sleep": _sleep,
    "wake": _wake,
    "forget": _forget,
    "canary-hold": _canary_hold,
}


def restart(spec: ServerSpec, hosts: HostPool, steps: list[Step], progress: Progress) -> None:
    for step in steps:
        if step.verb == "start":
            t = hosts.transport(spec.host)
            if procs.status(t, proc_of(step)).running:
                apply(
                    Step("stop", "restart", (), ServerStep(proc=proc_of(step))),
                    spec,
                    hosts,
                    progress,
                )
        apply(step, spec, hosts, progress)


# -- which process serves, and its log ----------------------------------------------------
def live_proc(spec: ServerSpec, t: Transport, facts: dict[str, Any]) -> str:
    if spec.strategy == "recreate":
        return spec.name
    live = read_state(t, facts, spec.name).get("live") or "blue"
    return f"{spec.name}-{live}"


def logs(spec: ServerSpec, hosts: HostPool, lines: int = 100) -> list[str]:
    t = hosts.transport(spec.host)
    return procs.tail(t, live_proc(spec, t, host_facts(hosts, spec.host)), lines)
