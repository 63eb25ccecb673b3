"""The cluster kind's pure plan: (desired, current, observed) -> steps.

Nodes start head first, then each worker, then `wait-nodes` until the GCS shows every node;
they stop in reverse (workers, then the head). A head that must restart takes every worker
with it (they joined the old GCS). A worker whose launch changed restarts alone. Removal
stops every node and forgets the records. Tested from `tests/cases/cluster/*.toml`."""

from __future__ import annotations

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.cluster.launch import launch_hash, ray_argv, ray_env
from llmops.ops.kinds.cluster.observed import ClusterObserved, ClusterStep
from llmops.ops.kinds.cluster.spec import ClusterSpec


def plan_cluster(
    desired: ClusterSpec | None, current: ClusterSpec | None, observed: ClusterObserved
) -> list[Step]:
    spec = desired or current
    if spec is None:
        return []
    known = list(dict.fromkeys([*(current.nodes() if current else []), *observed.nodes,
                                *spec.nodes()]))
    if desired is None:
        steps = [_stop(spec, h, "cluster removed") for h in reversed(known)
                 if _alive(observed, h)]
        return [*steps, Step("forget", f"remove the records of cluster {spec.name} on "
                             f"{', '.join(spec.nodes())}", (), ClusterStep(nodes=list(known)))]
    nodes = desired.nodes()
    want = {h: launch_hash(desired, h, _python(observed, h), observed.addresses)
            for h in nodes}
    gone = [h for h in reversed(known) if h not in nodes and _alive(observed, h)]
    steps = [_stop(desired, h, "no longer a node of the cluster") for h in gone]
    head = observed.node(desired.head)
    head_ok = head.running and head.hash == want[desired.head]
    redo = [h for h in nodes if not head_ok or not (
        observed.node(h).running and observed.node(h).hash == want[h])]
    if not redo:
        return steps
    for h in reversed(redo):
        node = observed.node(h)
        if node.running or node.crashed:
            steps.append(_stop(desired, h, "spec changed" if node.running else
                               "end what the crashed node left running"))
    for h in redo:
        steps.append(_start(desired, h, observed, want[h]))
    steps.append(Step("wait-nodes", f"wait for the GCS of {desired.head} to show all "
                      f"{len(nodes)} nodes alive", (), ClusterStep(nodes=list(nodes))))
    return steps


def _alive(observed: ClusterObserved, host: str) -> bool:
    node = observed.node(host)
    return node.running or node.crashed


def _python(observed: ClusterObserved, host: str) -> str:
    return observed.python.get(host, "python3")


def _stop(spec: ClusterSpec, host: str, why: str) -> Step:
    role = "head" if host == spec.head else "worker"
    return Step("stop", f"stop the Ray {role} on {host} ({why})", (),
                ClusterStep(host=host, role=role))


def _start(spec: ClusterSpec, host: str, observed: ClusterObserved, want: str) -> Step:
    role = "head" if host == spec.head else "worker"
    argv = ray_argv(spec, host, _python(observed, host), observed.addresses)
    env = ray_env(spec, host, observed.addresses)
    how = (f"--head on {observed.addresses[host]}:{spec.port}" if role == "head"
           else f"joining {observed.addresses[spec.head]}:{spec.port}")
    return Step(f"start-{role}", f"ray start {how} on {host}", tuple(argv),
                ClusterStep(host=host, role=role, env=env, hash=want))
