"""The cluster kind's checklist, run after every action, revert and rollback: every node's
`ray start` process runs; the head's GCS shows exactly the spec's nodes alive, at the
addresses of the cluster's interface; each node's CPUs, GPUs, custom resources and object
store are what the spec asks; each node's GPUs in Ray are the ones its host reports (the
host's own probe, never this machine's); the same Ray/vLLM/torch on every node. After a
removal: no node process left, the GCS port closed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Check
from llmops.ops.kinds.cluster.apply import address_of, version_mismatch
from llmops.ops.kinds.cluster.hostcalls import gcs_view, node_facts
from llmops.ops.kinds.cluster.spec import ClusterSpec
from llmops.ops.kinds.hoststate import host_facts, port_answers
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MB = 1_000_000


def checklist(spec: ClusterSpec, hosts: HostPool) -> list[Check]:
    checks: list[Check] = []
    began = time.monotonic()
    seen: dict[str, dict[str, Any]] = {}
    down = []
    for host in spec.nodes():
        t = hosts.transport(host)
        if not procs.status(t, spec.proc_name(host)).running:
            down.append(host)
        seen[host] = node_facts(hosts, host, spec.interface)
    checks.append(_timed(began, Check("node processes running", not down,
                                      f"not running on {', '.join(down)}" if down
                                      else f"{len(spec.nodes())} of {len(spec.nodes())}")))
    addresses = {h: address_of(hosts, h, f) for h, f in seen.items()}
    began = time.monotonic()
    try:
        view = gcs_view(hosts, spec.head, addresses[spec.head], spec.port)
    except TransportError as exc:
        checks.append(_timed(began, Check("nodes joined", False, str(exc))))
        return checks
    alive = {n["address"]: n for n in view["nodes"] if n["alive"]}
    addresses = as_ray_sees(addresses, alive)
    missing = [h for h in spec.nodes() if addresses[h] not in alive]
    extra = sorted(set(alive) - set(addresses.values()))
    checks.append(_timed(began, Check(
        "nodes joined", view["reachable"] and not missing and not extra,
        (f"missing {', '.join(missing)}" if missing else "")
        + (f" unexpected {', '.join(extra)}" if extra else "")
        or f"{len(alive)} alive: " + ", ".join(sorted(alive)))))
    began = time.monotonic()
    wrong = [f"{h}: {w}" for h in spec.nodes() if addresses[h] in alive
             for w in resource_mismatch(spec, alive[addresses[h]]["resources"])]
    checks.append(_timed(began, Check("node resources", not wrong and not missing,
                                      "; ".join(wrong) or "as the spec asks")))
    began = time.monotonic()
    gpus = [gpu_mismatch(spec, h, alive.get(addresses[h]), hosts) for h in spec.nodes()]
    bad = [g for g in gpus if g]
    checks.append(_timed(began, Check(
        "GPUs as each host reports", not bad and not missing,
        "; ".join(bad) or ", ".join(f"{h} {_host_gpus(hosts, h)}" for h in spec.nodes()))))
    mismatch = version_mismatch(seen)
    ray = {h: f["versions"].get("ray") for h, f in seen.items()}
    off = [h for h, v in ray.items() if v != spec.ray_version]
    checks.append(Check("same versions on every node", not mismatch and not off,
                        mismatch or (f"Ray {', '.join(str(ray[h]) for h in off)} on "
                                     f"{', '.join(off)}" if off else
                                     f"Ray {spec.ray_version} everywhere")))
    return checks


def as_ray_sees(addresses: dict[str, str], alive: dict[str, Any]) -> dict[str, str]:
    """Pure: Ray replaces a loopback node address by the machine's own; a cluster of one on
    loopback (a local host) is matched with the one node alive."""
    if len(addresses) == 1 and next(iter(addresses.values())).startswith("127.") and \
            len(alive) == 1:
        return dict.fromkeys(addresses, next(iter(alive)))
    return addresses


def resource_mismatch(spec: ClusterSpec, found: dict[str, float]) -> list[str]:
    """Pure: what a node's Ray resources differ in from the spec, in words."""
    wrong = []
    if spec.num_cpus is not None and found.get("CPU", 0) != spec.num_cpus:
        wrong.append(f"CPU {found.get('CPU', 0):g} != {spec.num_cpus}")
    if spec.num_gpus is not None and found.get("GPU", 0) != spec.num_gpus:
        wrong.append(f"GPU {found.get('GPU', 0):g} != {spec.num_gpus}")
    for key, amount in spec.resources.items():
        if found.get(key, 0) != amount:
            wrong.append(f"{key} {found.get(key, 0):g} != {amount:g}")
    store = found.get("object_store_memory", 0)
    if abs(store - spec.object_store_mb * MB) > MB:
        wrong.append(f"object store {store / MB:.0f} MB != {spec.object_store_mb} MB")
    return wrong


def _host_gpus(hosts: HostPool, host: str) -> int:
    return len(host_facts(hosts, host).get("gpus") or [])


def gpu_mismatch(spec: ClusterSpec, host: str, node: dict[str, Any] | None,
                 hosts: HostPool) -> str | None:
    """A node's GPUs in Ray against its host's probe: never more than the host has, all of
    them when num_gpus is unset (Ray detects them)."""
    if node is None:
        return None
    have = _host_gpus(hosts, host)
    ray = int(node["resources"].get("GPU", 0))
    want = have if spec.num_gpus is None else spec.num_gpus
    if ray > have:
        return f"{host}: Ray shows {ray} GPUs, the host reports {have}"
    if ray != want:
        return f"{host}: Ray shows {ray} GPUs, expected {want}"
    return None


def checklist_absent(spec: ClusterSpec, hosts: HostPool) -> list[Check]:
    began = time.monotonic()
    left = []
    for host in spec.nodes():
        if hosts.lookup(host) is None:
            continue
        if procs.status(hosts.transport(host), spec.proc_name(host)).running:
            left.append(host)
    checks = [_timed(began, Check("node processes gone", not left,
                                  f"still running on {', '.join(left)}" if left else "none"))]
    if hosts.lookup(spec.head) is not None:
        began = time.monotonic()
        address = address_of(hosts, spec.head, node_facts(hosts, spec.head, spec.interface))
        open_ = port_answers(hosts.transport(spec.head), spec.port, address)
        checks.append(_timed(began, Check("GCS port closed", not open_,
                                          f"{address}:{spec.port} "
                                          + ("still answers" if open_ else "closed"))))
    return checks


def _timed(began: float, check: Check) -> Check:
    check.seconds = round(time.monotonic() - began, 3)
    return check
