"""The gateway kind: one OpenAI endpoint (a LiteLLM proxy under gunicorn) in front of lab
servers, routed by model name, with fallbacks, retries, cool-down, a cache and per-token
prices; config changes reload with a HUP, so none drops a request.

One concept per module: `spec` (what is asked), `config` (pure: LiteLLM's config from the spec
and the lab), `launch` (paths, argv, env, launch hash), `plan` (pure: spec + observed ->
steps), `apply` (thin: observe, preflight, steps), `client` (the gateway's HTTP API, the key
by name), `checks` (the checklist), `usage` (the callback's usage lines: tokens, cost, cache,
fallbacks; the telemetry). ops/hostside/gateway_hooks.py is the callback itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops import procs
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
from llmops.ops.kinds.env import serving as env_serving
from llmops.ops.kinds.env.spec import EnvSpec, pin_name, pin_version
from llmops.ops.kinds.gateway import apply as gateway_apply
from llmops.ops.kinds.gateway import canaryrun
from llmops.ops.kinds.gateway import checks as gateway_checks
from llmops.ops.kinds.gateway import drill as gateway_drill
from llmops.ops.kinds.gateway import usage as gateway_usage
from llmops.ops.kinds.gateway.client import gateway_client, key_source
from llmops.ops.kinds.gateway.config import Unreachable, backend_for
from llmops.ops.kinds.gateway.launch import litellm_argv, litellm_env
from llmops.ops.kinds.gateway.observed import GatewayObserved
from llmops.ops.kinds.gateway.plan import plan_gateway
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def gateway_state(running: bool, crashed: bool, installing: bool, alive: bool | None) -> str:
    """One word (pure): installing, serving, starting (running, not answering), crashed,
    stopped."""
    if installing:
        return "installing"
    if running:
        return "serving" if alive is not False else "starting"
    return "crashed" if crashed else "stopped"


def reach_of(server: Spec | None) -> tuple[str, str, int, str] | None:
    """What of a server the gateway's config holds (pure; None: not a server)."""
    if not isinstance(server, ServerSpec):
        return None
    return (server.host, server.listen, server.port, server.api_model())


def serves_classifier(server: ServerSpec) -> bool:
    """Started on vLLM's pooling runner and not converted to embeddings (`convert =
    "classify"`, which the server's own smoke test and checklist need): it can answer
    /classify (pure; the gateway's checklist `guard` check asks it)."""
    return (server.args.get("runner") == "pooling"
            and server.args.get("convert", "classify") == "classify")


def admit_guard(spec: GatewaySpec, field: str, server: Spec | None, context: Context) -> None:
    """A guard server is a classifier the gateway's host reaches."""
    if not isinstance(server, ServerSpec):
        return  # a missing one is refused by its dependency
    if not serves_classifier(server):
        raise SpecError(field, f"server {server.name} is not a classifier (its args: runner "
                        f"{server.args.get('runner', 'auto')!r}, convert "
                        f"{server.args.get('convert', 'auto')!r}); a guard model answers "
                        "vLLM's /classify", f"serve a sequence-classification model with "
                        f"--arg runner=pooling --arg convert=classify (llmops server up "
                        f"{server.name} ...), or name another server")
    host = context.spec("host", server.host)
    try:
        backend_for(spec.host, server, getattr(host, "address", None),
                    bool(getattr(host, "local", False)),
                    gateway_local=bool(getattr(context.spec("host", spec.host), "local", False)),
                    tunnel_port=spec.tunnel_port(server.name))
    except Unreachable as exc:
        raise SpecError(field, str(exc)) from None


def admit_env(spec: GatewaySpec, env: Spec | None) -> None:
    """An env the gateway runs on is on its host and pins the LiteLLM it asks for and
    gunicorn (a missing one is refused by its dependency)."""
    if not isinstance(env, EnvSpec):
        return
    if env.host != spec.host:
        raise SpecError("env", f"env {env.name} is on host {env.host}; gateway {spec.name} "
                        f"runs on {spec.host}", f"give an env on {spec.host}")
    litellm, gunicorn = spec.litellm_pins()
    pins = {pin_name(p): p for p in env.packages}
    missing = []
    pin = pins.get("litellm", "")
    extras = pin.partition("[")[2].partition("]")[0].split(",") if "[" in pin else []
    if pin_version(pin or "x==") != spec.litellm_version or "proxy" not in extras:
        missing.append(f"{litellm} (it pins {pin or 'no litellm'})")
    if "gunicorn" not in pins:
        missing.append(f"{gunicorn}==<version>")
    if missing:
        raise SpecError("env", f"env {env.name} lacks what the gateway runs: "
                        f"{'; '.join(missing)}", f"llmops env up {env.name} --packages ... "
                        f"with {litellm} and gunicorn==23.0.0, or drop env")


def admit_tunnels(spec: GatewaySpec, tunnelled: list[tuple[str, int]], context: Context
                  ) -> None:
    """Each tunnel's local port (the gateway's port + 100 + the server's place) is a port and
    not one a server or another gateway on the gateway's host uses."""
    taken = {spec.port}
    for other in context.desired.values():
        if getattr(other, "host", None) != spec.host:
            continue
        if isinstance(other, ServerSpec):
            taken |= set(other.ports())
        elif isinstance(other, GatewaySpec) and other.name != spec.name:
            taken.add(other.port)
    for name, port in tunnelled:
        if port > 65535 or port in taken:
            what = "taken" if port <= 65535 else "not a port"
            raise SpecError("port", f"the tunnel to server {name} would listen on {port} (the "
                            f"gateway's port + 100 + its place), which is {what} on "
                            f"{spec.host}", "pick another port for the gateway")


class GatewayKind(Kind[GatewaySpec, GatewayObserved]):
    """LiteLLM gateways: config generated from the lab, HUP reloads, usage lines per request."""

    name: ClassVar[str] = "gateway"
    folder: ClassVar[str] = "gateways"
    Spec: ClassVar[type[Spec]] = GatewaySpec
    order: ClassVar[int] = 85
    metrics: ClassVar[tuple[Metric, ...]] = gateway_usage.METRICS

    # -- admission -------------------------------------------------------------------
    def depends_on(self, spec: GatewaySpec) -> dict[str, Ref]:
        found: dict[str, Ref] = {"host": ("host", spec.host)}
        for model, servers in spec.models.items():
            for i, server in enumerate(servers):
                found[f"models.{model}[{i}]"] = ("server", server)
        for model, guard in spec.guards.items():
            found[f"guards.{model}.server"] = ("server", guard.server)
        if spec.env is not None:
            found["env"] = ("env", spec.env)
        return found

    def follows(self, spec: GatewaySpec, dep: Ref, before: base.Spec | None,
                after: base.Spec | None) -> bool:
        """A server it routes to moves (host, listen address, port or served model name): the
        config must follow in the same action (rollback/gateways.py `followers`). A canary
        server on its host changes: the gateway runs its canary in the same action
        (canaryrun.py), after the server started the new colour."""
        if dep == ("env", spec.env):  # its venv: an upgrade, a rollback, a repair of the env
            return env_serving.servers_follow(before, after)
        if dep[0] != "server":
            return False
        canary = (isinstance(after, ServerSpec) and after.strategy == "canary"
                  and after.host == spec.host and before != after)
        return canary or reach_of(before) != reach_of(after)

    def owns_process(self, spec: GatewaySpec, proc_name: str) -> bool:
        return (proc_name in (spec.proc_name(), spec.install_proc())
                or proc_name.startswith(f"{spec.proc_name()}.tunnel."))

    def admit(self, spec: GatewaySpec, context: Context) -> None:
        """Every server reachable from the gateway's host; its port free there."""
        here = bool(getattr(context.spec("host", spec.host), "local", False))
        tunnelled = []
        for model, servers in spec.models.items():
            for i, name in enumerate(servers):
                server = context.spec("server", name)
                if not isinstance(server, ServerSpec):
                    continue
                host = context.spec("host", server.host)
                try:
                    b = backend_for(spec.host, server, getattr(host, "address", None),
                                    bool(getattr(host, "local", False)), gateway_local=here,
                                    tunnel_port=spec.tunnel_port(name))
                except Unreachable as exc:
                    raise SpecError(f"models.{model}[{i}]", str(exc)) from None
                if b.tunnel is not None:
                    tunnelled.append((name, b.tunnel))
        admit_tunnels(spec, tunnelled, context)
        for model, guard in spec.guards.items():
            admit_guard(spec, f"guards.{model}.server", context.spec("server", guard.server),
                        context)
        admit_env(spec, context.spec("env", spec.env) if spec.env else None)
        for (_kind, other_name), other in context.desired.items():
            if getattr(other, "host", None) != spec.host:
                continue
            if isinstance(other, ServerSpec) and spec.port in other.ports():
                raise SpecError("port", f"port {spec.port} is used by server {other_name}",
                                "pick another port")
            if (isinstance(other, GatewaySpec) and other.name != spec.name
                    and other.port == spec.port):
                raise SpecError("port", f"port {spec.port} is used by gateway {other_name}",
                                "pick another port")

    def preflight(self, spec: GatewaySpec, hosts: HostPool) -> None:
        gateway_apply.preflight(spec, hosts)

    # -- observe / plan / apply --------------------------------------------------------
    def observe(self, spec: GatewaySpec, hosts: HostPool) -> GatewayObserved:
        return canaryrun.observe(gateway_apply.observe(spec, hosts), spec, hosts)

    def plan(self, desired: GatewaySpec | None, current: GatewaySpec | None,
             observed: GatewayObserved) -> list[Step]:
        return plan_gateway(desired, current, observed)

    def apply(self, step: Step, spec: GatewaySpec | None, hosts: HostPool,
              progress: Progress) -> dict[str, Any]:
        assert spec is not None
        if step.verb in canaryrun.HANDLERS:
            return canaryrun.apply(step, spec, hosts, progress)
        return gateway_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: GatewaySpec, hosts: HostPool) -> list[Check]:
        return gateway_checks.checklist(spec, hosts)

    def rollback_checks(self, spec: GatewaySpec, hosts: HostPool) -> list[Check]:
        """After a rollback (and `--last-good`, and `llmops drill`): the fallback drill, one
        drill proxy per model with fallbacks on the gateway's port + 1 (drill.py)."""
        return gateway_drill.drill_checks(spec, hosts)

    def validate_absent(self, spec: GatewaySpec, hosts: HostPool) -> list[Check]:
        info = procs.status(hosts.transport(spec.host), spec.proc_name())
        return [Check("process gone", not info.running, f"{spec.proc_name()} {info.state}")]

    # -- capabilities ------------------------------------------------------------------
    def commands(self, spec: GatewaySpec, hosts: HostPool) -> list[LaunchCommand]:
        """The command the proxy starts with (the key's variable is filled at start)."""
        facts = gateway_apply.gateway_facts(spec, hosts)
        return [LaunchCommand(spec.proc_name(), litellm_argv(spec, facts),
                              {**litellm_env(spec, facts),
                               spec.master_key_env: key_source(spec)})]

    def logs(self, spec: GatewaySpec, hosts: HostPool, lines: int = 100) -> list[str]:
        t = hosts.transport(spec.host)
        found = procs.tail(t, spec.proc_name(), lines)
        if not found and procs.status(t, spec.install_proc()).state != "missing":
            found = procs.tail(t, spec.install_proc(), lines)
        return found

    def report(self, spec: GatewaySpec, hosts: HostPool) -> dict[str, Any] | None:
        """Usage summed per model (requests, errors, tokens, cost, cache hits, fallbacks)
        and the last requests, from the callback's lines on the host."""
        usage, last = gateway_usage.read_usage(spec, hosts)
        return {**usage.to_dict(), "last": last}

    def try_prompt(self, spec: GatewaySpec, hosts: HostPool, model: str, prompt: str,
                   max_tokens: int = 32) -> dict[str, Any]:
        """One prompt through the gateway: the answer, which server answered, the cost, the
        cache and fallbacks (`llmops gateway try`, the console's try box)."""
        if model not in spec.models:
            raise SpecError("model", f"{spec.name} exposes no model {model!r}",
                            f"use one of: {', '.join(spec.models)}")
        with gateway_client(spec, hosts) as client:
            answer = client.chat(model, prompt, max_tokens).to_dict()
        served = {seen.api_base: name for name, seen in gateway_apply.resolve(spec, hosts).items()}
        return {**answer, "model": model, "server": served.get(answer["api_base"])}

    def sampler(self, spec: GatewaySpec, hosts: HostPool) -> gateway_usage.UsageSampler:
        return gateway_usage.UsageSampler(spec, hosts)

    def status(self, spec: GatewaySpec, hosts: HostPool, answering: bool | None = None) -> str:
        t = hosts.transport(spec.host)
        info = procs.status(t, spec.proc_name())
        installing = procs.status(t, spec.install_proc()).running
        alive = None
        if info.running:  # asked every time: its telemetry is the usage file, not the proxy
            with gateway_client(spec, hosts, key=False, timeout=5.0) as client:
                alive = client.alive()
        return gateway_state(info.running, info.rc not in (0, None), installing, alive)

    def summary(self, spec: GatewaySpec, status: str, latest: Sample | None) -> dict[str, Any]:
        values = latest.values if latest else {}
        return {
            "name": spec.name,
            "host": spec.host,
            "port": spec.port,
            "state": status,
            "models": {m: list(s) for m, s in spec.models.items()},
            "fallbacks": {m: list(s) for m, s in spec.fallbacks.items()},
            "cache": spec.cache,
            "litellm": spec.litellm_version,
            "requests": values.get("requests"),
            "req_per_s": values.get("req_per_s"),
            "cost": values.get("cost"),
            "errors": values.get("errors"),
            "cache_hit_pct": values.get("cache_hit_pct"),
            "fallbacks_used": values.get("fallbacks"),
            "guardrails": list(spec.guardrails),
            "blocked": values.get("blocked"),
        }
