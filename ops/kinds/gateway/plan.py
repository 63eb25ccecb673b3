"""The gateway kind's pure plan: (desired, current, observed) -> steps.

Install LiteLLM into the venv when it lacks the pinned release; write the config when the
file on the host differs from the one generated from the spec and the lab; then start the
process (new, or its command changed: stop first), or, when only the config changed, reload
it with a HUP (no dropped requests); wait until the proxy answers with the wanted config.
Removal stops it and leaves the venv and the usage lines. Tested from data files
(`tests/cases/gateway/*.toml`)."""

from __future__ import annotations

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.gateway.canary import canary_steps
from llmops.ops.kinds.gateway.config import Backend, config_text, marker_of
from llmops.ops.kinds.gateway.launch import launch_hash, litellm_argv, litellm_env, venv_of
from llmops.ops.kinds.gateway.observed import GatewayObserved, GatewayStep
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.gateway.tunnels import plan_tunnels


class Unresolved(ValueError):
    """A server the spec names has no route from the gateway's host (admission says why)."""


def backends_of(spec: GatewaySpec, observed: GatewayObserved) -> dict[str, Backend]:
    found = {}
    for server in spec.all_servers():
        seen = observed.backends.get(server)
        if seen is None or seen.error or not seen.api_base or not seen.api_model:
            why = seen.error if seen and seen.error else "not in the lab"
            raise Unresolved(f"server {server}: {why}")
        found[server] = Backend(server, seen.api_base, seen.api_model, seen.tunnel)
    return found


def plan_gateway(
    desired: GatewaySpec | None, current: GatewaySpec | None, observed: GatewayObserved
) -> list[Step]:
    """Steps from what runs (observed) to what is desired; None = remove."""
    spec = desired or current
    if spec is None:
        return []
    proc = spec.proc_name()
    if desired is None:
        steps = []
        if observed.installing:
            steps.append(Step("stop", f"stop {spec.install_proc()} (gateway removed)", (),
                              GatewayStep(proc=spec.install_proc())))
        if observed.proc_running or observed.proc_crashed:
            why = "gateway removed" if observed.proc_running else "end what the crash left"
            steps.append(Step("stop", f"stop {proc} ({why})", (), GatewayStep(proc=proc)))
        steps += plan_tunnels(spec, observed, keep=False)
        return [*steps, Step("forget", f"remove the record of {spec.name} on its host", (),
                             GatewayStep())]
    facts = observed.facts
    steps = []
    venv = venv_of(desired, facts)
    if desired.env is None and observed.venv_version != desired.litellm_version:
        had = observed.venv_version or "nothing"
        if observed.installing:
            steps.append(Step("stop", f"stop {desired.install_proc()} (a reconcile left it)",
                              (), GatewayStep(proc=desired.install_proc())))
        steps.append(Step(
            "install", f"install litellm[proxy]=={desired.litellm_version} into {venv} "
            f"(it holds {had})", (),
            GatewayStep(proc=desired.install_proc(), venv=venv,
                        version=desired.litellm_version)))
    backends = backends_of(desired, observed)
    steps += plan_tunnels(desired, observed)  # before the config that routes through them
    text = config_text(desired, backends, observed.hooks_source)
    canaries = canary_steps(desired, backends, observed, text)  # a server's canary: last
    want = marker_of(text)
    if observed.config_hash != want or not observed.hooks_ok:
        routes = ", ".join(f"{m} -> {'/'.join(s)}" for m, s in desired.models.items())
        why = "" if observed.hooks_ok else "; its callbacks module on the host was changed"
        steps.append(Step("write-config", f"write the config of {desired.name} ({routes}"
                          f"{why})", (), GatewayStep(config=text, hash=want)))
    launch = launch_hash(desired, facts)
    running = observed.proc_running
    if running and observed.proc_hash == launch:
        if observed.loaded_hash != want or not observed.hooks_ok:
            steps.append(Step("reload", f"reload {proc} on the new config (HUP: no request "
                              "dropped)", (), GatewayStep(proc=proc, hash=want)))
            steps.append(_wait(proc, want))
        return [*steps, *canaries]
    if running:
        steps.append(Step("stop", f"stop {proc} (its command changed)", (),
                          GatewayStep(proc=proc)))
    elif observed.proc_crashed:
        steps.append(Step("stop", f"stop {proc} (end what the crash left)", (),
                          GatewayStep(proc=proc)))
    steps.append(Step(
        "start", f"start {proc} on {desired.listen}:{desired.port}",
        tuple(litellm_argv(desired, facts)),
        GatewayStep(proc=proc, hash=want, launch=launch, env=litellm_env(desired, facts))))
    steps.append(_wait(proc, want))
    return [*steps, *canaries]


def _wait(proc: str, want: str | None) -> Step:
    return Step("wait-ready", f"wait for /health/liveliness of {proc} and config {want}", (),
                GatewayStep(proc=proc, hash=want))
