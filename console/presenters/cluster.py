"""Ray clusters: the head and worker hosts, the state (up, degraded: a node dropped, down,
stopped), the Ray release and interface. The detail pane has each node (process, address,
alive in the GCS, its CPUs/GPUs/custom resources and what is free of them, the vLLM workers
there by the server that placed them, its GPUs as its own host reports them) and where every
placement group's bundles run (`Engine.report`). A sharded server's detail lists the same
nodes from its side (`sharded_nodes`, `sharded_text`: also `llmops server show`).
A change (a form) or removal is one action for the whole cluster; ctrl+z reverts it as one."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Key, Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.cluster.spec import ClusterSpec

CLUSTER_STATES = {"up": ("●", "green"), "degraded": ("◐", "bold yellow"),
                  "down": ("✗", "bold red"), "stopped": ("○", "grey50")}


def cluster_spec(spec: Spec) -> ClusterSpec:
    assert isinstance(spec, ClusterSpec)
    return spec


def resources_text(resources: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items())
                     if k not in ("memory", "object_store_memory")) or "-"


class ClusterPresenter(Presenter):
    kind = "cluster"
    view_id = "clusters"
    title = "Clusters"
    columns = ("name", "head", "workers", "state", "ray", "interface", "port")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "New", "Start a Ray cluster over lab hosts (a form)"),
        "edit": Key("e", "Edit", "Change the selected cluster: the nodes whose start changed "
                    "restart (the head takes every worker with it); one action"),
        "remove": Key("x", "Down", "Stop every node (workers first) and remove the cluster "
                      "from the lab (an action; ctrl+z brings it back)"),
    }
    form = FormLayout(
        fields=("name", "head", "workers", "interface", "port", "num_cpus", "num_gpus",
                "object_store_mb", "ray_version", "temp_dir", "start_timeout_s"),
        labels={"num_cpus": "CPUs per node", "num_gpus": "GPUs per node",
                "object_store_mb": "Object store MB", "ray_version": "Ray",
                "temp_dir": "Temp dir", "start_timeout_s": "Start timeout s"},
        help={"name": "e.g. shard (lowercase letters, digits, '-')",
              "head": "the host that runs the Ray head (see Hosts)",
              "workers": "hosts that join it, comma-separated",
              "interface": "the interface the nodes share (GLOO/NCCL_SOCKET_IFNAME)"},
        refs={"head": "host"},
        advanced=("num_cpus", "num_gpus", "object_store_mb", "ray_version", "temp_dir",
                  "start_timeout_s"),
        title="New cluster", submit="Start", edit_focus="workers")
    what = ("Ray clusters over your hosts appear here: a server naming one shards its model "
            "across the nodes (pipeline_parallel_size spanning them); a node that drops "
            "marks the cluster degraded.")
    cli = "llmops cluster up NAME --head H1 --workers H2 --interface eth0"
    created = "started"
    removed = "down"
    leaves = "has every node stopped (workers first) and leaves the lab's desired state"
    serving = ("up",)
    observe_interval = 20.0
    poll_interval = 10.0
    pane = True
    tail_lines = 6

    def state_cell(self, row: RowState) -> Text:
        look = CLUSTER_STATES.get(row.state)
        if row.busy or look is None:
            return super().state_cell(row)
        mark, style = look
        return Text(f"{mark} {row.state}", style=style)

    def cells(self, row: RowState) -> list[str | Text]:
        spec = cluster_spec(row.spec)
        return [spec.name, spec.head, ", ".join(spec.workers) or "-", self.state_cell(row),
                spec.ray_version, spec.interface, str(spec.port)]

    def detail_title(self, row: RowState) -> Text:
        spec = cluster_spec(row.spec)
        title = Text.assemble((spec.name, "bold"), f" · Ray {spec.ray_version} · ",
                              (row.busy or row.state, "bold"))
        title.append(f"\nnodes      {', '.join(spec.nodes())} over {spec.interface} · GCS "
                     f"port {spec.port} · room for tp x pp = {spec.capacity()}",
                     style="grey50")
        return title

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        """Each node as the GCS sees it, then where each placement group's bundles run."""
        if not report:
            return None
        text = Text(f"{report.get('alive')}/{report.get('expected')} nodes alive\n",
                    style="bold")
        for node in report.get("nodes", []):
            alive = node.get("alive")
            style = "green" if alive else "bold red"
            text.append(f"  {node['host']:<12} {node['role']:<6} ", style=style)
            text.append(f"{node.get('process', '?'):<9} {node.get('address', '-'):<15} "
                        f"{'alive' if alive else 'DOWN'}  "
                        f"{resources_text(node.get('resources') or {})}"
                        f" · free {resources_text(node.get('free') or {})}\n")
            text.append(f"  {'':<12} {'':<6} {workers_text(node.get('workers') or [])} · "
                        f"{gpu_text(node)}\n", style="grey50")
        for pg in report.get("placement", []):
            where = ", ".join(f"rank slot {b['index']} on {b['host']}" for b in pg["bundles"])
            text.append(f"placement {pg['id'][:8]} {pg['state']}: {where}\n", style="grey50")
        return text


def gpu_text(node: dict[str, Any]) -> str:
    """A node's GPUs as its host's NVML reports them, or why it has none (the probe's note)."""
    gpus = node.get("gpus") or []
    if not gpus:
        return str(node.get("gpu_note") or "GPUs not read")
    return ", ".join(
        f"GPU {g['index']} {g.get('utilization_percent', 0)}% "
        f"{g.get('memory_used_bytes', 0) / 2**30:.1f}/{g.get('memory_total_bytes', 0) / 2**30:.1f}"
        " GiB" for g in gpus)


def workers_text(workers: list[dict[str, Any]]) -> str:
    """The actors on a node, by the server whose engine placed them."""
    if not workers:
        return "no vLLM workers"
    by: dict[str, list[str]] = {}
    for w in workers:
        who = f"server {w['owner']}" if w.get("owner") else f"job {str(w.get('job'))[:8]}"
        by.setdefault(who, []).append(f"{w.get('class', 'actor')} pid {w.get('pid')}")
    return "; ".join(f"{who}: {', '.join(found)}" for who, found in by.items())


def sharded_nodes(report: dict[str, Any], server: str) -> list[dict[str, Any]]:
    """Pure: the cluster's nodes as a sharded server's detail and `server show` list them:
    host, role, address, Ray alive (in the GCS and its `ray start` running), the server's own
    vLLM workers placed there (pid and class), who else holds the node, its GPUs (or why
    none)."""
    rows = []
    for node in report.get("nodes", []):
        workers = node.get("workers") or []
        mine = [w for w in workers if w.get("owner") == server]
        rows.append({
            "host": node["host"], "role": node.get("role"), "address": node.get("address"),
            "process": node.get("process"),  # a killed node stays alive in the GCS a while
            "ray_alive": bool(node.get("alive")) and node.get("process") == "running",
            "workers": [{"pid": w.get("pid"), "class": w.get("class")} for w in mine],
            "others": sorted({str(w.get("owner") or w.get("job")) for w in workers
                              if w.get("owner") != server}),
            "gpus": node.get("gpus") or [], "gpu_note": node.get("gpu_note")})
    return rows


def sharded_text(cluster: str, report: dict[str, Any], server: str) -> Text:
    """The sharded server's nodes in its detail pane: one line per node; a node that dropped
    in red."""
    text = Text(f"nodes of cluster {cluster} ({report.get('alive') or 0}/"
                f"{report.get('expected', '?')} alive in Ray, {report.get('state', '?')})\n",
                style="bold")
    for row in sharded_nodes(report, server):
        alive = row["ray_alive"]
        text.append(f"  {row['host']:<12} {row.get('role') or '?':<6} "
                    f"{row.get('address') or '-':<15} ",
                    style="green" if alive else "bold red")
        text.append("Ray alive  " if alive else "Ray DOWN  ", style="" if alive else "bold red")
        ranks = ", ".join(f"pid {w['pid']}" for w in row["workers"])
        text.append(f"vLLM workers: {ranks or 'none'}")
        if row["others"]:
            text.append(f" (also: {', '.join(row['others'])})", style="grey50")
        text.append(f" · {gpu_text(row)}\n", style="grey50")
    return text
