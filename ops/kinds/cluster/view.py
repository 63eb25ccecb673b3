"""What lists, views and servers read of a cluster: its state in a word (up, degraded, down,
stopped), a row, the GCS's report (each node: alive, resources, free, the vLLM workers there
and the server they serve, its GPUs), and the preflight a server naming it runs before vLLM
starts across its nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.cluster.apply import address_of, version_mismatch
from llmops.ops.kinds.cluster.checks import as_ray_sees
from llmops.ops.kinds.cluster.hostcalls import gcs_view, node_facts
from llmops.ops.kinds.cluster.placement import (
    device_key,
    holders,
    node_gpus,
    owners,
    refusal,
    workers_by_node,
)
from llmops.ops.kinds.cluster.spec import ClusterSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def cluster_state(expected: int, running: int, alive: int | None) -> str:
    """One word (pure): up (every node alive in the GCS), degraded (the head answers, a node
    is missing), down (nodes run, the GCS does not answer), stopped (nothing runs)."""
    if running == 0 and not alive:
        return "stopped"
    if alive is None:
        return "down"
    return "up" if alive >= expected and running >= expected else "degraded"


def report(spec: ClusterSpec, hosts: HostPool) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    running = 0
    addresses: dict[str, str] = {}
    for host in spec.nodes():
        row: dict[str, Any] = {"host": host, "role": "head" if host == spec.head else "worker"}
        try:
            t = hosts.transport(host)
            row["process"] = procs.status(t, spec.proc_name(host)).state
            addresses[host] = address_of(hosts, host, node_facts(hosts, host, spec.interface))
            row["address"] = addresses[host]
        except TransportError as exc:
            row["process"], row["error"] = "unreachable", str(exc)
        running += row["process"] == "running"
        nodes.append(row)
    alive: int | None = None
    placement: list[dict[str, Any]] = []
    if spec.head in addresses:
        try:
            view = gcs_view(hosts, spec.head, addresses[spec.head], spec.port)
        except TransportError:
            view = {"reachable": False, "nodes": [], "placement": []}
        if view["reachable"]:
            # a restarted node is a new entry at the same address; the dead one stays listed
            by_address = {n["address"]: n for n in sorted(view["nodes"],
                                                          key=lambda n: bool(n["alive"]))}
            alive_now = {a: n for a, n in by_address.items() if n["alive"]}
            addresses = as_ray_sees(addresses, alive_now)
            for row in nodes:
                row["address"] = addresses.get(row["host"], row.get("address"))
            alive = 0
            for row in nodes:
                found = by_address.get(row.get("address", ""))
                row["alive"] = bool(found and found["alive"])
                row["resources"] = found["resources"] if found else {}
                alive += row["alive"]
            host_at = {a: h for h, a in addresses.items()}
            placement = [{**pg, "bundles": [{**b, "host": host_at.get(b["node"], b["node"])}
                                            for b in pg["bundles"]]}
                         for pg in view["placement"]]
            workers = workers_by_node(view, owners(hosts, view, host_at))
            for row in nodes:
                row["free"] = (view.get("free") or {}).get(row.get("address", ""), {})
                row["workers"] = workers.get(row.get("address", ""), [])
    for row in nodes:
        if row["process"] != "unreachable":
            try:
                row.update(node_gpus(hosts, row["host"]))
            except TransportError as exc:
                row.update({"gpus": [], "gpu_note": f"GPUs not read: {exc}"})
    state = cluster_state(len(spec.nodes()), running, alive)
    return {"name": spec.name, "state": state, "alive": alive, "expected": len(spec.nodes()),
            "device": device_key(spec), "nodes": nodes, "placement": placement}


def summary(spec: ClusterSpec, status: str) -> dict[str, Any]:
    return {"name": spec.name, "host": spec.head, "head": spec.head,
            "workers": list(spec.workers), "nodes": len(spec.nodes()), "state": status,
            "interface": spec.interface, "port": spec.port, "ray": spec.ray_version,
            "capacity": spec.capacity()}


def preflight_server(cluster: ClusterSpec, ranks: int, hosts: HostPool, *,
                     server: str | None = None, host: str | None = None) -> dict[str, str]:
    """Before vLLM starts across the nodes: every node answers with its address on the
    interface (what VLLM_HOST_IP will be), the interface up, the same vLLM/torch/Ray, every
    node alive in the GCS, enough of them for tp x pp, and the tp x pp bundles placeable on
    the devices free now (`placement.refusal`; what `server` itself holds counts as free: a
    recreate stops it first; `host`, where its engine runs, must have one). Refuses naming
    the node and the fix; returns host -> address."""
    seen: dict[str, dict[str, Any]] = {}
    for node in cluster.nodes():
        try:
            seen[node] = node_facts(hosts, node, cluster.interface)
        except TransportError as exc:
            raise SpecError("cluster", f"node {node} of {cluster.name}: {exc}",
                            "bring the host back or take it out of the cluster") from None
        iface = seen[node]["interface"]
        if not (iface["exists"] and iface["up"] and iface["address"]):
            raise SpecError("cluster", f"node {node}: interface {cluster.interface} is "
                            "missing, down or has no address (VLLM_HOST_IP would be wrong)",
                            f"bring {cluster.interface} up on {node}")
    mismatch = version_mismatch(seen)
    if mismatch:
        raise SpecError("cluster", mismatch, "install the same vLLM/torch/Ray on every node")
    addresses = {h: str(f["interface"]["address"]) for h, f in seen.items()}
    view = gcs_view(hosts, cluster.head, addresses[cluster.head], cluster.port)
    alive = {n["address"] for n in view["nodes"] if n["alive"]}
    down = [h for h in cluster.nodes() if addresses[h] not in alive]
    if down:
        raise SpecError("cluster", f"node {', '.join(down)} of {cluster.name} is not alive "
                        "in Ray", f"reconcile the cluster (`llmops cluster up {cluster.name}`)")
    if ranks > cluster.capacity():
        raise SpecError("pp", f"tp x pp = {ranks} cannot be placed: cluster {cluster.name} "
                        f"has {len(alive)} nodes x {cluster.devices_per_node()} device",
                        "lower tp/pp or add workers to the cluster")
    host_at = {a: h for h, a in addresses.items()}
    key = device_key(cluster)
    free = {h: float((view.get("free") or {}).get(a, {}).get(key, 0))
            for h, a in addresses.items()}
    workers = workers_by_node(view, owners(hosts, view, host_at))
    held, own = holders(workers, host_at, server)
    refused = refusal(key, ranks, host or cluster.head, free, held, own)
    if refused:
        what, fix = refused
        raise SpecError("cluster", f"cluster {cluster.name}: {what}", fix)
    return addresses
