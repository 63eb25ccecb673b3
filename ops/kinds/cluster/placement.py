"""Where a sharded server's ranks run and whether a new one fits: each node's free devices
(the GCS's, live), the vLLM workers on each node and the server whose process placed them,
each node's GPUs as its host reports them. Pure functions tested from data
(tests/cases/cluster/placement/*.toml), and one thin look per driver host (`owners`).

vLLM asks Ray for one bundle of `{device: 1}` per rank (tp x pp bundles, PACK), the first on
the node of the engine that drives them (the server's host): a launch whose bundles cannot be
placed waits in Ray until its start timeout. Checking the free devices first turns that wait
into a refusal naming the node."""

from __future__ import annotations

import json
import math
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.cluster.spec import ClusterSpec
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

GPU = "GPU"


def device_key(spec: ClusterSpec) -> str:
    """The Ray resource one vLLM rank takes: `GPU` (vLLM's CUDA/ROCm platforms), or the one
    custom resource of a cluster that offers no GPUs and exactly one (a node's stand-in
    device: what the CPU tests' shim makes vLLM ask for)."""
    if not spec.num_gpus and len(spec.resources) == 1:
        return next(iter(spec.resources))
    return GPU


def workers_by_node(view: dict[str, Any], owners: dict[str, str]
                    ) -> dict[str, list[dict[str, Any]]]:
    """Pure: node address -> the live actors there, each with the server (procctl name) whose
    engine placed it, where known."""
    job_owner = {j["id"]: owners.get(j["id"]) for j in view.get("jobs", [])}
    found: dict[str, list[dict[str, Any]]] = {}
    for actor in view.get("actors", []):
        found.setdefault(str(actor["node"]), []).append(
            {"class": actor["class"], "pid": actor["pid"], "job": actor["job"],
             "owner": job_owner.get(actor["job"])})
    return found


def refusal(key: str, ranks: int, head_of_ranks: str, free: dict[str, float],
            held: dict[str, list[str]], own: dict[str, int]) -> tuple[str, str] | None:
    """Pure: why tp x pp = `ranks` bundles of one `key` each cannot be placed now, as (what,
    fix), or None when they can. `free`: host -> free amount of `key` (live, from the GCS);
    `own`: host -> devices the server being changed holds (freed when it stops, so counted
    as free); `held`: host -> who holds the others; `head_of_ranks`: the server's host, where
    vLLM puts the first bundle."""
    room = {h: math.floor(free.get(h, 0) + own.get(h, 0) + 1e-9) for h in free}
    words = ", ".join(f"{h} {room[h]}" + (f" (held by {', '.join(held[h])})" if held.get(h)
                                          else "") for h in room)
    if room.get(head_of_ranks, 0) < 1:
        return (f"node {head_of_ranks} has no {key} free for the first rank (vLLM places it "
                f"on the server's host); free now: {words}",
                f"stop what holds {key} on {head_of_ranks}, or run the server on a node with "
                f"a free {key}")
    if sum(room.values()) < ranks:
        return (f"tp x pp = {ranks} needs {ranks} {key} across the nodes; free now: {words}",
                "stop a server that holds them, lower tp/pp or add workers to the cluster")
    return None


def holders(workers: dict[str, list[dict[str, Any]]], host_at: dict[str, str],
            server: str | None) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Pure: host -> who holds its devices (servers, or a job), and host -> how many ranks
    `server` itself holds there (one device each)."""
    held: dict[str, list[str]] = {}
    own: dict[str, int] = {}
    for address, actors in workers.items():
        host = host_at.get(address, address)
        for actor in actors:
            owner = actor.get("owner")
            if server is not None and owner == server:
                own[host] = own.get(host, 0) + 1
                continue
            who = f"server {owner}" if owner else f"Ray job {actor['job']}"
            if who not in held.setdefault(host, []):
                held[host].append(who)
    return held, own


def gpu_rows(facts: dict[str, Any], found: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Pure: a node's GPUs for the report — NVML's rows (`gpustat.py`) where its host's probe
    saw GPUs, else none with the probe's note (a CPU node: why there are none)."""
    if not facts.get("gpus"):
        note = facts.get("gpu_note") or "the host's last probe saw no GPU"
        return {"gpus": [], "gpu_note": f"no GPU: {note}"}
    if found is None:
        return {"gpus": [], "gpu_note": "GPUs in the probe, but NVML did not answer now"}
    return {"gpus": found, "gpu_note": None}


def node_gpus(hosts: HostPool, host: str) -> dict[str, Any]:
    """One node's GPUs now (its host's own NVML, never this machine's)."""
    facts = host_facts(hosts, host)
    if not facts.get("gpus"):
        return gpu_rows(facts, None)
    source = files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
    try:
        done = hosts.transport(host).python_script(source, [], timeout=30)
        found = list(json.loads(done.stdout or "[]"))
    except (TransportError, ValueError):
        return gpu_rows(facts, None)
    return gpu_rows(facts, found)


def owners(hosts: HostPool, view: dict[str, Any], host_at: dict[str, str]) -> dict[str, str]:
    """Job id -> the llmops process (procctl name: the server) whose session holds the job's
    driver (vLLM's engine), looked up on the driver's host: one `ps` and one procctl list per
    host that drives workers."""
    jobs = [j for j in view.get("jobs", []) if j["driver_address"] in host_at]
    found: dict[str, str] = {}
    for address in {j["driver_address"] for j in jobs}:
        try:
            t = hosts.transport(host_at[address])
            sid_of = _sessions(t.run(["ps", "-eo", "pid=,sid="], timeout=30).stdout)
            by_sid = {sid_of.get(p.pid or -1): p.name for p in procs.list_procs(t)
                      if p.running and p.pid}
        except TransportError:
            continue
        for job in jobs:
            if job["driver_address"] == address:
                owner = by_sid.get(sid_of.get(int(job["driver_pid"]), -2))
                if owner:
                    found[job["id"]] = owner
    return found


def _sessions(ps: str) -> dict[int, int]:
    found = {}
    for line in ps.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].isdigit() and words[1].isdigit():
            found[int(words[0])] = int(words[1])
    return found
