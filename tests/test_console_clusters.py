"""The Clusters view and a sharded server's detail with Pilot. Without Ray: a lab holding a
cluster of one on host `local` and a server naming it (committed, nothing started): the
Clusters row and its nodes (GPUs: none, with the probe's note), the server's detail listing
the cluster's nodes, `server show --json` carrying the same. With Ray, `sharded_detail_live`
is driven from tests/test_cluster_sharded.py while its PP=2 server runs on the two namespace
hosts (no start of its own): each node alive, the server's vLLM worker placed on each.

The pure renderings are tested here from a report as the cluster kind returns it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labtools import llmops
from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    lab_with,
    local_host,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Static

from llmops.console.app import LlmopsApp
from llmops.console.presenters.cluster import gpu_text, sharded_nodes, sharded_text
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.cluster import ClusterSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.lab import Lab

REPORT: dict[str, Any] = {
    "name": "rc", "state": "degraded", "alive": 1, "expected": 2, "device": "llmops_cpu",
    "nodes": [
        {"host": "ca", "role": "head", "process": "running", "address": "10.0.0.1",
         "alive": True, "resources": {"CPU": 1.0, "llmops_cpu": 1.0}, "free": {"CPU": 1.0},
         "workers": [{"class": "RayWorkerProc", "pid": 11, "job": "01000000", "owner": "pp"},
                     {"class": "Trainer", "pid": 12, "job": "02000000", "owner": None}],
         "gpus": [{"index": 0, "utilization_percent": 35, "memory_used_bytes": 3 << 30,
                   "memory_total_bytes": 80 << 30, "power_watts": None}], "gpu_note": None},
        {"host": "cb", "role": "worker", "process": "exited", "address": "10.0.0.2",
         "alive": False, "resources": {}, "free": {}, "workers": [], "gpus": [],
         "gpu_note": "no GPU: no NVIDIA driver on this host (CPU only)"},
    ],
    "placement": [],
}


def test_sharded_nodes_from_a_report() -> None:
    rows = {r["host"]: r for r in sharded_nodes(REPORT, "pp")}
    assert rows["ca"]["ray_alive"] and not rows["cb"]["ray_alive"]
    killed = {**REPORT, "nodes": [{**REPORT["nodes"][0], "process": "exited"}]}
    assert not sharded_nodes(killed, "pp")[0]["ray_alive"]  # the GCS has not noticed yet
    assert rows["ca"]["workers"] == [{"pid": 11, "class": "RayWorkerProc"}]
    assert rows["ca"]["others"] == ["02000000"] and rows["cb"]["workers"] == []
    assert gpu_text(rows["ca"]) == "GPU 0 35% 3.0/80.0 GiB"
    assert gpu_text(rows["cb"]) == "no GPU: no NVIDIA driver on this host (CPU only)"
    text = sharded_text("rc", REPORT, "pp").plain
    assert "nodes of cluster rc (1/2 alive in Ray, degraded)" in text
    lines = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert "Ray alive" in lines["ca"] and "vLLM workers: pid 11" in lines["ca"]
    assert "(also: 02000000)" in lines["ca"] and "GPU 0 35%" in lines["ca"]
    assert "Ray DOWN" in lines["cb"] and "vLLM workers: none" in lines["cb"]


def lab_with_cluster(tmp_path: Path) -> Path:
    """Host `local` (probed), cluster rc of one on it and server sh naming it, committed as
    hand edits: nothing runs."""
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    try:
        cluster = ClusterSpec(name="rc", head="local", port=26397, num_cpus=1,
                              resources={"llmops_cpu": 1}, temp_dir="/tmp/llmops-rc-console")
        server = ServerSpec(name="sh", host="local", model="/models/none", port=18952,
                            cluster="rc")
        rels = [lab.write_spec("cluster", "rc", cluster), lab.write_spec("server", "sh", server)]
        lab.commit("hand edit: cluster rc and server sh", rels)
    finally:
        lab.close()
    return path


def view_of(app: LlmopsApp, view_id: str) -> ResourceVerbs:
    assert app.main is not None
    app.main.action_show(view_id)
    view = app.main.view(view_id)
    assert isinstance(view, ResourceVerbs)
    return view


def observed(view: ResourceVerbs, name: str, *, notes: bool = False) -> bool:
    row = view.rows.get(name)
    return (row is not None and row.summary is not None and not row.in_flight
            and (row.notes is not None if notes else row.report is not None))


async def test_clusters_view_and_the_sharded_servers_nodes(tmp_path: Path) -> None:
    path = lab_with_cluster(tmp_path)
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = view_of(app, "clusters")
        await wait_for(pilot, lambda: observed(view, "rc"), 90, "rc observed")
        table = view.query_one(ResourceTable)
        cells = [str(c) for c in table.get_row("rc")]
        assert cells[:3] == ["rc", "local", "-"] and cells[3] == "○ stopped", cells
        await wait_for(pilot, lambda: {"new", "edit", "remove"} <= footer_keys(app), 30,
                       "the Clusters view's keys")
        table.move_cursor(row=table.get_row_index("rc"))
        await pilot.pause()
        title = shown_text(view.query_one("#detail-title"))
        assert "rc · Ray 2.60.0 · stopped" in title and "room for tp x pp = 1" in title
        report = view.presenter.report_text(view.rows["rc"].report)
        assert report is not None
        text = report.plain
        assert "local" in text and "no vLLM workers" in text and "no GPU: " in text, text

        servers = view_of(app, "servers")
        await wait_for(pilot, lambda: observed(servers, "sh", notes=True), 90, "sh's nodes")
        table = servers.query_one(ResourceTable)
        table.move_cursor(row=table.get_row_index("sh"))
        await pilot.pause()
        notes = shown_text(servers.query_one("#detail-notes", Static))
        assert "nodes of cluster rc (0/1 alive in Ray, stopped)" in notes, notes
        line = next(x for x in notes.splitlines() if x.strip().startswith("local"))
        assert "Ray DOWN" in line and "vLLM workers: none" in line and "no GPU: " in line
    close_app_lab(app)
    shown = json.loads(llmops(path, "server", "show", "sh", "--json", timeout=120).stdout)
    assert shown["spec"]["cluster"] == "rc" and shown["state"] == "stopped", shown
    assert shown["cluster"]["state"] == "stopped" and shown["cluster"]["expected"] == 1
    (node,) = shown["nodes"]
    assert node["host"] == "local" and node["ray_alive"] is False and node["workers"] == []
    assert node["gpus"] == [] and node["gpu_note"].startswith("no GPU: "), node


async def sharded_detail_live(lab: Path, server: str, cluster: str,
                              hosts: dict[str, str]) -> dict[str, list[int]]:
    """Driven by the cluster module while `server` runs sharded over `cluster` (host ->
    address): the Clusters view shows every node alive with the server's worker on it, the
    server's detail lists each node, Ray alive, its vLLM worker's pid, the node's GPUs (none
    here, with the probe's note). Returns host -> the worker pids the detail showed."""
    app = LlmopsApp(lab)
    pids: dict[str, list[int]] = {}
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = view_of(app, "clusters")
        await wait_for(pilot, lambda: observed(view, cluster), 180, f"{cluster} observed")
        report = view.rows[cluster].report or {}
        assert report.get("state") == "up" and report.get("alive") == len(hosts), report
        shown = view.presenter.report_text(report)
        text = shown.plain if shown is not None else ""
        assert text.count(f"server {server}: ") == len(hosts), text  # a worker on each node
        servers = view_of(app, "servers")
        await wait_for(pilot, lambda: observed(servers, server, notes=True), 180,
                       f"{server}'s nodes")
        table = servers.query_one(ResourceTable)
        table.move_cursor(row=table.get_row_index(server))
        await pilot.pause()
        notes = shown_text(servers.query_one("#detail-notes", Static))
        assert f"nodes of cluster {cluster} ({len(hosts)}/{len(hosts)} alive in Ray, up)" in \
            notes, notes
        for host, address in hosts.items():
            line = next(x for x in notes.splitlines() if x.strip().startswith(host))
            assert address in line and "Ray alive" in line and "no GPU: " in line, line
            found = line.split("vLLM workers: ")[1].split(" ·")[0]
            assert found.startswith("pid "), line
            pids[host] = [int(w.removeprefix("pid ")) for w in found.split(" (")[0].split(", ")]
    close_app_lab(app)
    return pids
