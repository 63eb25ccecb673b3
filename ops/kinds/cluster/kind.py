"""The cluster kind: a Ray cluster over lab hosts (head + workers) that servers shard a model
across with vLLM's Ray backend. llmops starts and watches Ray; it does not replace it.

One concept per module: `spec` (what is asked), `launch` (pure: each node's `ray start`
argv, env and launch hash), `plan` (pure: spec + observed -> steps), `apply` (thin: observe,
preflight, steps), `hostcalls` (raynode calls and each node's record), `checks` (the
checklist), `view` (state word, row, report, the server-side preflight), `placement` (the
live free devices against tp x pp, the vLLM workers per node and their server, each node's
GPUs). The host side is one stdlib script, ops/hostside/raynode.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops import procs
from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    LaunchCommand,
    Progress,
    Ref,
    Sample,
    Spec,
    SpecError,
    Step,
)
from llmops.ops.kinds.cluster import apply as cluster_apply
from llmops.ops.kinds.cluster import checks as cluster_checks
from llmops.ops.kinds.cluster import view as cluster_view
from llmops.ops.kinds.cluster.hostcalls import worker_logs
from llmops.ops.kinds.cluster.launch import ray_argv, ray_env
from llmops.ops.kinds.cluster.observed import ClusterObserved
from llmops.ops.kinds.cluster.plan import plan_cluster
from llmops.ops.kinds.cluster.spec import ClusterSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class ClusterKind(Kind[ClusterSpec, ClusterObserved]):
    """Ray clusters: nodes started head first and stopped in reverse, as one action."""

    name: ClassVar[str] = "cluster"
    folder: ClassVar[str] = "clusters"
    Spec: ClassVar[type[Spec]] = ClusterSpec
    order: ClassVar[int] = 40
    """After hosts and envs, before the servers that stand on it."""

    def depends_on(self, spec: ClusterSpec) -> dict[str, Ref]:
        found: dict[str, Ref] = {"head": ("host", spec.head)}
        for i, worker in enumerate(spec.workers):
            found[f"workers[{i}]"] = ("host", worker)
        return found

    def host_of(self, spec: ClusterSpec) -> str | None:
        return spec.head

    def hosts_of(self, spec: ClusterSpec) -> list[str]:
        """Every node: a worker's `ray start` is the cluster's own on its host too."""
        return spec.nodes()

    def owns_process(self, spec: ClusterSpec, proc_name: str) -> bool:
        return proc_name in {spec.proc_name(h) for h in spec.nodes()}

    def admit(self, spec: ClusterSpec, context: Context) -> None:
        """No two clusters on one host at one GCS port, or with the same temp dirs."""
        for (kind, other_name), other in context.desired.items():
            if kind != "cluster" or other_name == spec.name or not isinstance(other, ClusterSpec):
                continue
            shared = set(spec.nodes()) & set(other.nodes())
            if shared and other.port == spec.port:
                raise SpecError("port", f"port {spec.port} is the GCS port of cluster "
                                f"{other_name} on {sorted(shared)[0]}", "pick another port")

    def preflight(self, spec: ClusterSpec, hosts: HostPool) -> None:
        cluster_apply.preflight(spec, hosts)

    def observe(self, spec: ClusterSpec, hosts: HostPool) -> ClusterObserved:
        return cluster_apply.observe(spec, hosts)

    def plan(self, desired: ClusterSpec | None, current: ClusterSpec | None,
             observed: ClusterObserved) -> list[Step]:
        return plan_cluster(desired, current, observed)

    def apply(self, step: Step, spec: ClusterSpec | None, hosts: HostPool,
              progress: Progress) -> dict[str, Any]:
        assert spec is not None
        return cluster_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: ClusterSpec, hosts: HostPool) -> list[Check]:
        return cluster_checks.checklist(spec, hosts)

    def validate_absent(self, spec: ClusterSpec, hosts: HostPool) -> list[Check]:
        return cluster_checks.checklist_absent(spec, hosts)

    # -- capabilities ------------------------------------------------------------------
    def commands(self, spec: ClusterSpec, hosts: HostPool) -> list[LaunchCommand]:
        """Each node's `ray start`, as reconcile runs it."""
        observed = cluster_apply.observe(spec, hosts)
        addresses = {h: observed.addresses.get(h, f"<address of {h}>") for h in spec.nodes()}
        return [LaunchCommand(f"{h}:{spec.proc_name(h)}",
                              ray_argv(spec, h, observed.python.get(h, "python3"), addresses),
                              ray_env(spec, h, addresses)) for h in spec.nodes()]

    def logs(self, spec: ClusterSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        """Each node's `ray start` log, then its newest Ray worker logs (vLLM's ranks)."""
        found = []
        for host in spec.nodes():
            found += [f"[{host}] {line}" for line in
                      procs.tail(hosts.transport(host), spec.proc_name(host), lines)]
            for log in worker_logs(hosts, host, spec.node_temp_dir(host), lines):
                found += [f"[{host} {log['file']}] {line}" for line in log["lines"]]
        return found

    def report(self, spec: ClusterSpec, hosts: HostPool) -> dict[str, Any] | None:
        """The GCS's view: each node (host, address, alive, resources) and the placement of
        every placement group's bundles (where vLLM's workers run)."""
        return cluster_view.report(spec, hosts)

    def status(self, spec: ClusterSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return str(cluster_view.report(spec, hosts)["state"])

    def summary(self, spec: ClusterSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return cluster_view.summary(spec, status)
