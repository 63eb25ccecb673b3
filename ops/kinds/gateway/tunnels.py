"""The gateway's SSH tunnels to servers that listen on loopback of another host.

Only where the gateway runs on this machine (`local`: where the lab's SSH key is; the key never
leaves it): one detached process per such server (`gateway.<name>.tunnel.<server>`,
ops/hostside/gateway_tunnel.py, copied beside the config) listening on 127.0.0.1:<the spec's
tunnel_port(server)> and carrying each connection over SSH to 127.0.0.1:<server port> on the
server's host, with the lab's known_hosts (no trust on first use). The config routes to the
local port. Started before the config is written, watched like the proxy (a `tunnel <server>`
check), restarted when its command changes (the server moved), stopped when no longer needed
or with the gateway."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds import hoststate
from llmops.ops.kinds.base import Check, Progress, Step
from llmops.ops.kinds.gateway.observed import GatewayObserved, GatewayStep, TunnelSeen
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

SCRIPT = "gateway_tunnel.py"
STATE_KEY = "tunnels"


def script_source() -> str:
    return files("llmops.ops.hostside").joinpath(SCRIPT).read_text()


def tunnel_argv(spec: GatewaySpec, server: ServerSpec, hosts: HostPool,
                facts: dict[str, Any]) -> list[str]:
    """The tunnel's command: this machine's python, the script beside the gateway's config,
    the local port, the server host's SSH address/port/user/key path, the lab's known_hosts
    and the server's port there."""
    host = hosts.lookup(server.host)
    assert host is not None and host.address
    home = f"{facts['workdir']}/gateways/{spec.name}"
    return [str(facts.get("python") or "python3"), f"{home}/{SCRIPT}",
            str(spec.tunnel_port(server.name)), host.address, str(host.port),
            host.user or "", host.key or "-", str(hosts.known_hosts), str(server.port)]


def launch_of(argv: list[str]) -> str:
    return hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:16]


def observe(spec: GatewaySpec, hosts: HostPool, facts: dict[str, Any],
            wanted: list[str]) -> dict[str, TunnelSeen]:
    """The tunnel processes wanted now and the ones the gateway's record names."""
    t = hosts.transport(spec.host)
    state = hoststate.read_state(t, facts, "gateways", spec.name)
    launched = dict(state.get(STATE_KEY) or {})
    found = {}
    for server in sorted({*wanted, *launched}):
        info = procs.status(t, spec.tunnel_proc(server))
        found[server] = TunnelSeen(running=info.running,
                                   crashed=not info.running and info.rc not in (0, None),
                                   launch=launched.get(server) if info.running else None)
    return found


def plan_tunnels(spec: GatewaySpec, observed: GatewayObserved, *, keep: bool = True
                 ) -> list[Step]:
    """(pure) Start the tunnels the routes need (stop first a running one whose command
    changed), stop the ones no longer needed; none kept (`keep` False) when the gateway goes."""
    wanted = {name: seen for name, seen in observed.backends.items() if seen.tunnel} \
        if keep else {}
    steps = []
    for server, seen in sorted(observed.tunnels.items()):
        if (seen.running or seen.crashed) and server not in wanted:
            why = "no longer needed" if seen.running else "end what its crash left"
            steps.append(Step("stop", f"stop the tunnel to {server} ({why})", (),
                              GatewayStep(proc=spec.tunnel_proc(server))))
    for server, backend in sorted(wanted.items()):
        argv = list(backend.tunnel_argv)
        launch = launch_of(argv)
        seen = observed.tunnels.get(server, TunnelSeen())
        if seen.running and seen.launch == launch:
            continue
        proc = spec.tunnel_proc(server)
        if seen.running or seen.crashed:
            why = "its command changed" if seen.running else "end what its crash left"
            steps.append(Step("stop", f"stop the tunnel to {server} ({why})", (),
                              GatewayStep(proc=proc)))
        steps.append(Step("tunnel", f"tunnel 127.0.0.1:{backend.tunnel} -> {server} over SSH",
                          tuple(argv), GatewayStep(proc=proc, launch=launch, server=server)))
    return steps


def start(step: Step, spec: GatewaySpec, hosts: HostPool, facts: dict[str, Any],
          progress: Progress) -> dict[str, Any]:
    """Write the script beside the config, start the tunnel, wait until its port listens."""
    data = step.data
    assert isinstance(data, GatewayStep) and data.proc and data.server
    t = hosts.transport(spec.host)
    home = f"{facts['workdir']}/gateways/{spec.name}"
    t.run(["mkdir", "-p", home], timeout=30).check()
    t.write_text(f"{home}/{SCRIPT}", script_source())
    info = procs.start(t, data.proc, list(step.argv), cwd=home)
    port = spec.tunnel_port(data.server)
    for _ in range(60):
        state = procs.status(t, data.proc)
        if not state.running:
            tail = " | ".join(procs.tail(t, data.proc, 6))
            raise RuntimeError(f"the tunnel to {data.server} exited (rc {state.rc}): {tail}")
        if listens(port):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"the tunnel to {data.server} does not listen on {port} after 30s")
    record = hoststate.read_state(t, facts, "gateways", spec.name)
    record[STATE_KEY] = {**dict(record.get(STATE_KEY) or {}), data.server: data.launch}
    hoststate.write_state(t, facts, "gateways", spec.name, record)
    progress(f"tunnel 127.0.0.1:{port} -> {data.server} (pid {info.pid})")
    return {"pid": info.pid, "port": port}


def listens(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port here (the tunnels run on this
    machine)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def checks(spec: GatewaySpec, hosts: HostPool, observed: GatewayObserved) -> list[Check]:
    """`tunnel <server>`: its process runs and its local port accepts connections."""
    t = hosts.transport(spec.host)
    found = []
    for server, seen in sorted(observed.backends.items()):
        if not seen.tunnel:
            continue
        info = procs.status(t, spec.tunnel_proc(server))
        ok = info.running and listens(seen.tunnel)
        found.append(Check(f"tunnel {server}", ok, f"{spec.tunnel_proc(server)} {info.state}, "
                           f"127.0.0.1:{seen.tunnel} "
                           f"{'accepts' if ok else 'does not accept'} connections"))
    return found
