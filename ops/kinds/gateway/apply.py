"""What the gateway kind does on hosts: observe, preflight, carry out plan steps.

Thin on purpose: every decision is in the pure plan (`plan.py`); this file runs it through
procctl (the install and the proxy are detached processes), the host's files and the
gateway's HTTP API (`client.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds import hoststate
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.env import serving as env_serving
from llmops.ops.kinds.gateway import tunnels
from llmops.ops.kinds.gateway.client import gateway_client, master_key
from llmops.ops.kinds.gateway.config import Unreachable, backend_for, marker_of
from llmops.ops.kinds.gateway.launch import (
    FOLDER,
    SHIPPED,
    config_path,
    home,
    litellm_argv,
    litellm_env,
    module_path,
    venv_of,
)
from llmops.ops.kinds.gateway.observed import BackendSeen, GatewayObserved, GatewayStep
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MARKER = ".llmops-gateway-venv"
"""Written into the venv by a finished install: the LiteLLM release it holds (with gunicorn
and httptools)."""
OLD_MARKER = ".llmops-litellm"
"""What an install wrote before httptools was part of it: such a venv is installed into
again (pip adds httptools)."""
INSTALL_TIMEOUT_S = 1800.0
READY_TIMEOUT_S = 300.0
STALL_S = 150.0
"""A proxy start that has not answered /health/liveliness at all after this long is restarted
once: healthy starts answered in 5-30 s here, at load 9 too."""
PIP_LINES = ("Collecting", "Downloading", "Installing", "Successfully", "ERROR", "error",
             "creating", "installed")

INSTALL_SCRIPT = files("llmops.ops.hostside").joinpath("gateway_install.py").read_text()
"""pip install into the venv under an flock on `<venv>.lock` (ops/hostside/gateway_install.py
says why), run as `python -c` on the gateway's host."""


class GatewayError(RuntimeError):
    """A gateway step failed; the message says which and why."""


@cache
def shipped() -> dict[str, str]:
    """The modules llmops ships beside a gateway's config, by file name: the callbacks
    LiteLLM loads by path, and the siblings they import from their own folder."""
    return {name: files("llmops.ops.hostside").joinpath(name).read_text()
            for name in SHIPPED}


def joined(sources: list[str | None]) -> str:
    """The shipped modules as one text (in SHIPPED's order): what the config's hash covers
    and what observe compares with the host's copies."""
    return "\0".join(s if s is not None else "\0missing" for s in sources)


def hooks_source() -> str:
    return joined(list(shipped().values()))


def read_state(t: Transport, facts: dict[str, Any], name: str) -> dict[str, Any]:
    return hoststate.read_state(t, facts, FOLDER, name)


def update_state(t: Transport, facts: dict[str, Any], name: str, **values: Any) -> None:
    state = read_state(t, facts, name)
    state.update(values)
    hoststate.write_state(t, facts, FOLDER, name, state)


def _text(t: Transport, path: str) -> str | None:
    try:
        return t.read_text(path)
    except (TransportError, OSError):
        return None


def resolve(spec: GatewaySpec, hosts: HostPool) -> dict[str, BackendSeen]:
    """Each server the spec names (routes and guards), as the gateway's host reaches it (from
    the lab)."""
    found = {}
    here = bool(getattr(hosts.lookup(spec.host), "local", False))
    for name in spec.all_servers():
        server = hosts.desired("server", name)
        if not isinstance(server, ServerSpec):
            found[name] = BackendSeen(error="not in the lab")
            continue
        address = hosts.lookup(server.host)
        try:
            b = backend_for(spec.host, server, getattr(address, "address", None),
                            bool(getattr(address, "local", False)), gateway_local=here,
                            tunnel_port=spec.tunnel_port(name))
        except Unreachable as exc:
            found[name] = BackendSeen(error=str(exc))
            continue
        argv = [] if b.tunnel is None else tunnels.tunnel_argv(
            spec, server, hosts, host_facts(hosts, spec.host))
        found[name] = BackendSeen(api_base=b.api_base, api_model=b.api_model, tunnel=b.tunnel,
                                  tunnel_argv=argv)
    return found


def gateway_facts(spec: GatewaySpec, hosts: HostPool) -> dict[str, Any]:
    """The host's facts, and for a gateway on an env the env's venv as its host holds it now
    (`env`: python, set; what `venv_of` and so argv and the launch hash read)."""
    facts = dict(host_facts(hosts, spec.host))
    if spec.env is not None:
        facts["env"] = env_serving.launch_facts(spec.env, hosts)
    return facts


def observe(spec: GatewaySpec, hosts: HostPool) -> GatewayObserved:
    """The venv's release, the config file's hash, the process and what it loaded."""
    t, facts = hosts.transport(spec.host), gateway_facts(spec, hosts)
    version = _text(t, f"{venv_of(spec, facts)}/{MARKER}")
    if version is None:
        old = _text(t, f"{venv_of(spec, facts)}/{OLD_MARKER}")
        version = f"{old.strip()} without httptools" if old else None
    installing = procs.status(t, spec.install_proc()).running
    config = _text(t, config_path(spec, facts))
    hooks = joined([_text(t, module_path(spec, facts, n)) for n in SHIPPED])
    info = procs.status(t, spec.proc_name())
    state = read_state(t, facts, spec.name)
    backends = resolve(spec, hosts)
    return GatewayObserved(
        facts=facts,
        venv_version=version.strip() if version else None,
        installing=installing,
        config_hash=marker_of(config) if config else None,
        proc_running=info.running,
        proc_crashed=not info.running and info.rc not in (0, None),
        proc_hash=state.get("launch_hash") if info.running else None,
        loaded_hash=state.get("loaded") if info.running else None,
        backends=backends,
        tunnels=tunnels.observe(spec, hosts, facts,
                                [n for n, b in backends.items() if b.tunnel]),
        hooks_source=hooks_source(),
        hooks_ok=config is None or hooks == hooks_source(),
    )


def preflight(spec: GatewaySpec, hosts: HostPool) -> None:
    """Read-only, before anything is written: the key's variable is set here, and every
    server is reachable from the gateway's host."""
    master_key(spec)
    for name, seen in resolve(spec, hosts).items():
        if seen.error:
            raise SpecError("models", f"server {name}: {seen.error}",
                            "route the model to a server the gateway's host can reach")


# -- apply --------------------------------------------------------------------------------
def payload(step: Step) -> GatewayStep:
    assert isinstance(step.data, GatewayStep), step
    return step.data


def apply(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
          ) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def _install(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
             ) -> dict[str, Any]:
    """pip install into the venv as a detached process (it finishes if the console dies);
    its output lines are the progress; the marker is written only when it succeeded."""
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    proc = str(data.proc)
    python = str(facts.get("python") or "python3")
    began = time.monotonic()
    procs.start(t, proc, [python, "-c", INSTALL_SCRIPT, str(data.venv), str(data.version)],
                env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})  # its import check fetches none
    offset = 0
    while True:
        lines, offset = procs.read_log(t, proc, offset)
        for line in lines:
            if line.lstrip().startswith(PIP_LINES):
                progress(line.strip()[:200])
        info = procs.status(t, proc)
        if not info.running:
            break
        if time.monotonic() - began > INSTALL_TIMEOUT_S:
            procs.stop(t, proc)
            raise GatewayError(f"installing litellm took over {INSTALL_TIMEOUT_S:.0f}s")
        time.sleep(1.0)
    if info.rc != 0:
        tail = " | ".join(procs.tail(t, proc, 6))
        raise GatewayError(f"pip install litellm[proxy]=={data.version} failed "
                           f"(rc {info.rc}): {tail}")
    seconds = round(time.monotonic() - began, 1)
    progress(f"litellm {data.version} installed in {seconds}s")
    return {"install_seconds": seconds, "venv": data.venv}


def _write_config(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
                  ) -> dict[str, Any]:
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    t.run(["mkdir", "-p", home(spec, facts)], timeout=30).check()
    for name, source in shipped().items():
        t.write_text(module_path(spec, facts, name), source)
    t.write_text(config_path(spec, facts), str(data.config))
    progress(f"config {data.hash} written to {config_path(spec, facts)}")
    return {"config": data.hash}


def _start(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
           ) -> dict[str, Any]:
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    env = dict(data.env)
    env[spec.master_key_env] = master_key(spec)  # on procctl's stdin, never in a record
    info = procs.start(t, str(data.proc), list(step.argv), env=env, cwd=home(spec, facts))
    update_state(t, facts, spec.name, launch_hash=data.launch, loaded=None, retiring=[])
    progress(f"{data.proc} started (pid {info.pid})")
    return {"pid": info.pid}


def _reload(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    """HUP to gunicorn's master: a new worker on the new config, the old one finishes its
    requests and goes."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    info = procs.status(t, str(payload(step).proc))
    if not info.running or info.pid is None:
        raise GatewayError(f"{payload(step).proc} is not running: nothing to reload")
    old = workers(t, info.pid)
    update_state(t, facts, spec.name, retiring=old)
    t.run(["kill", "-HUP", str(info.pid)], timeout=30).check()
    progress(f"HUP sent to {payload(step).proc} (pid {info.pid}; worker {old} retires)")
    return {"reloaded": info.pid, "retiring": old}


def workers(t: Transport, master: int) -> list[int]:
    """gunicorn's worker pids under its master now: its children with its own command line
    (forks of it; named `gunicorn: worker` where setproctitle is installed; the master is
    also a subreaper, so an orphan reparented to it is not one)."""
    own = t.run(["ps", "-o", "args=", "-p", str(master)], timeout=30).stdout.strip()
    done = t.run(["ps", "-o", "pid=,args=", "--ppid", str(master)], timeout=30)
    found = []
    for line in (done.stdout or "").splitlines():
        pid, _, args = line.strip().partition(" ")
        if pid.isdigit() and (args.strip() == own or args.startswith("gunicorn: worker")):
            found.append(int(pid))
    return sorted(found)


def alive_pids(t: Transport, pids: list[int]) -> list[int]:
    """Which of `pids` still run on the host."""
    if not pids:
        return []
    done = t.run(["ps", "-o", "pid=", "-p", ",".join(map(str, pids))], timeout=30)
    return sorted(int(w) for w in (done.stdout or "").split() if w.isdigit())


def _restart_stalled(spec: GatewaySpec, t: Transport, facts: dict[str, Any],
                     progress: Progress) -> dict[str, Any]:
    """A proxy that never answered its liveness probe within STALL_S of the wait: seen once in
    ~20 starts here (LiteLLM logged "Set models" and never finished its start-up). What it
    waits on is kept (py-spy's dump where the host has py-spy, else the log's tail), then it is
    stopped and started again with the same command."""
    proc = spec.proc_name()
    info = procs.status(t, proc)
    tail = procs.tail(t, proc, 8)
    dump = ""
    if info.pid:
        try:
            done = t.run(["py-spy", "dump", "--pid", str(info.pid), "--subprocesses"],
                         timeout=60)
            dump = (done.stdout or "")[-4000:]
        except (TransportError, OSError):
            dump = ""
    progress(f"{proc} did not answer in {STALL_S:.0f}s (log: {' | '.join(tail)[-300:]}); "
             "restarting it once")
    procs.stop(t, proc)
    env = {**litellm_env(spec, facts), spec.master_key_env: master_key(spec)}
    procs.start(t, proc, litellm_argv(spec, facts), env=env, cwd=home(spec, facts))
    return {"stalled_log": tail, "stalled_dump": dump}


def _wait_ready(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
                ) -> dict[str, Any]:
    """Until /health/liveliness answers and every deployment carries the wanted config. A
    proxy that has not answered at all after STALL_S is restarted once (`_restart_stalled`)."""
    data = payload(step)
    t, facts = hosts.transport(spec.host), gateway_facts(spec, hosts)
    began, last = time.monotonic(), "no answer yet"
    answered, stalled = False, None
    with gateway_client(spec, hosts, timeout=10.0) as client:
        while time.monotonic() - began < READY_TIMEOUT_S:
            info = procs.status(t, spec.proc_name())
            if not info.running:
                tail = " | ".join(procs.tail(t, spec.proc_name(), 6))
                raise GatewayError(f"{spec.proc_name()} exited (rc {info.rc}): {tail}")
            alive = client.alive()
            answered = answered or alive
            if not answered and stalled is None and time.monotonic() - began > STALL_S:
                stalled = _restart_stalled(spec, t, facts, progress)
                began = time.monotonic()
                continue
            if alive:
                try:
                    loaded = client.loaded_configs()
                except Exception as exc:  # noqa: BLE001 - keep waiting, say the last error
                    last = f"/model/info: {exc}"
                else:
                    retiring = alive_pids(t, list(read_state(t, facts, spec.name)
                                                  .get("retiring") or []))
                    if loaded == {data.hash} and retiring:  # the old worker may answer that
                        last = f"config {data.hash} loaded; worker {retiring} still retiring"
                    elif loaded == {data.hash}:
                        seconds = round(time.monotonic() - began, 2)
                        update_state(t, facts, spec.name, loaded=data.hash, retiring=[])
                        progress(f"gateway ready on config {data.hash} after {seconds}s")
                        return {"ready_seconds": seconds, **({"restarted": stalled}
                                                             if stalled else {})}
                    last = f"config loaded: {sorted(loaded)}, want {data.hash}"
            time.sleep(0.5)
    raise GatewayError(f"{spec.name} not ready after {READY_TIMEOUT_S:.0f}s: {last}")


def _stop(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
          ) -> dict[str, Any]:
    info = procs.stop(hosts.transport(spec.host), str(payload(step).proc))
    progress(f"{payload(step).proc} stopped ({info.stopped})")
    return {"stopped": info.stopped}


def _forget(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    """The record goes; the config file too (a rollback writes it again); the venv and the
    usage lines stay."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    t.run(["rm", "-f", hoststate.state_path(facts, FOLDER, spec.name),
           config_path(spec, facts)], timeout=30).check()
    progress(f"record of {spec.name} removed")
    return {}


def _tunnel(step: Step, spec: GatewaySpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    return tunnels.start(step, spec, hosts, host_facts(hosts, spec.host), progress)


HANDLERS: dict[str, Callable[..., Any]] = {
    "tunnel": _tunnel,
    "install": _install,
    "write-config": _write_config,
    "start": _start,
    "reload": _reload,
    "wait-ready": _wait_ready,
    "stop": _stop,
    "forget": _forget,
}
