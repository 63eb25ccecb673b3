"""What a server naming a cluster needs from it (the server kind calls these): admission
(its host is a node, tp x pp fits the nodes), the facts its launch reads (the GCS address,
its own address on the interface, the interface, the Ray instance its ranks join), whether
an action on the cluster takes the server along (pure), the preflight before vLLM starts
across the nodes (view.preflight_server), the nodes that dropped (the server is then
degraded), and the diagnostics a failed launch puts in the journal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Context, Spec, SpecError
from llmops.ops.kinds.cluster.apply import address_of, diagnostics
from llmops.ops.kinds.cluster.hostcalls import node_facts
from llmops.ops.kinds.cluster.spec import ClusterSpec
from llmops.ops.kinds.cluster.view import preflight_server
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

__all__ = ["admit_server", "dropped_nodes", "instance", "launch_diagnostics", "launch_facts",
           "preflight_server", "servers_follow"]


def admit_server(name: str, host: str, cluster: str, ranks: int, context: Context) -> None:
    """The server's host is a node of the cluster, and tp x pp ranks fit its nodes."""
    spec = context.spec("cluster", cluster)
    if not isinstance(spec, ClusterSpec):
        return  # the dependency check names the missing cluster
    if host not in spec.nodes():
        raise SpecError("host", f"{host} is not a node of cluster {cluster} "
                        f"({', '.join(spec.nodes())})",
                        f"run server {name} on the head ({spec.head}) or a worker")
    if ranks > spec.capacity():
        raise SpecError("pp", f"tp x pp = {ranks} is more than cluster {cluster} holds: "
                        f"{len(spec.nodes())} nodes x {spec.devices_per_node()} device",
                        "lower tp/pp, or add workers to the cluster")


def launch_facts(cluster_name: str, host: str, hosts: HostPool) -> dict[str, Any]:
    """What the server's launch reads of its cluster: RAY_ADDRESS, VLLM_HOST_IP, the
    interface for gloo/NCCL, and `instance`: the Ray its ranks join (empty when the lab has
    no such cluster). The instance is in the server's launch hash, so a server whose nodes
    restarted under it (its ranks died with them) is restarted by its next reconcile."""
    spec = hosts.desired("cluster", cluster_name)
    if not isinstance(spec, ClusterSpec):
        return {}
    head = address_of(hosts, spec.head, node_facts(hosts, spec.head, spec.interface))
    mine = head if host == spec.head else address_of(
        hosts, host, node_facts(hosts, host, spec.interface))
    return {"name": spec.name, "address": f"{head}:{spec.port}", "node_ip": mine,
            "interface": spec.interface, "instance": instance(spec, hosts)}


def instance(spec: ClusterSpec, hosts: HostPool) -> str:
    """Which Ray runs now: each node's `ray start --block` process as procctl knows it (pid
    and start time; `down` when it does not run). A node that restarted is a new Ray node
    (new raylet, new node id) and the vLLM ranks it held died with the old one; one procctl
    look per node, no Ray driver."""
    parts = []
    for host in spec.nodes():
        try:
            info = procs.status(hosts.transport(host), spec.proc_name(host))
        except TransportError:
            parts.append(f"{host}=unreachable")
            continue
        parts.append(f"{host}={info.pid}@{info.started_at}" if info.running else f"{host}=down")
    return ",".join(parts)


def servers_follow(before: Spec | None, after: Spec | None) -> bool:
    """(pure) Every action on a cluster takes the servers sharded over it along: whether a
    node restarts (a launch change, a dropped node that any action restarts, a rollback) is
    known only from what runs, not from the two specs. The follower restarts only when its
    launch hash moved (the Ray instance: a node restarted and its ranks died), so on an
    action that restarted no node it costs its checks, which then vouch for it too."""
    return isinstance(before, ClusterSpec) and isinstance(after, ClusterSpec)


def dropped_nodes(cluster_name: str, hosts: HostPool) -> list[str]:
    """The cluster's nodes whose Ray process does not run or whose host does not answer:
    one look at each node's process, no Ray driver (the Servers view asks on every look)."""
    spec = hosts.desired("cluster", cluster_name)
    if not isinstance(spec, ClusterSpec):
        return []
    dropped = []
    for host in spec.nodes():
        try:
            running = procs.status(hosts.transport(host), spec.proc_name(host)).running
        except TransportError:
            running = False
        if not running:
            dropped.append(host)
    return dropped


def launch_diagnostics(cluster_name: str, hosts: HostPool) -> str:
    """What a server that failed to start across the nodes leaves in the journal: the GCS's
    nodes and placement groups, each node's last Ray lines."""
    spec = hosts.desired("cluster", cluster_name)
    return diagnostics(spec, hosts) if isinstance(spec, ClusterSpec) else ""
