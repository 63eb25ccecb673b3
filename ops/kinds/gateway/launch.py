"""Where a gateway lives on its host and how it is started: LiteLLM's CLI under gunicorn (one
worker: a HUP makes gunicorn start a worker on the new config and retire the old one after
its requests, so a config change drops nothing), its price map read locally (never fetched),
the usage file for the callbacks, and the launch hash observe compares.

The master key's value is never here: apply adds it to the process's environment from this
machine's variable named by `master_key_env`, right before the start."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmops.ops.kinds.gateway.config import HOOKS_MODULE
from llmops.ops.kinds.gateway.spec import GatewaySpec

FOLDER = "gateways"
SHIPPED = (f"{HOOKS_MODULE}.py", "gateway_patches.py", "injection_rules.py")
"""The modules copied beside the config: the callbacks LiteLLM loads by path
(ops/hostside/gateway_hooks.py) and the siblings they import from their folder (LiteLLM
1.108's patches; the injection rules llmops screens training data with too)."""
USAGE_ENV = "LLMOPS_GATEWAY_USAGE"


def home(spec: GatewaySpec, facts: dict[str, Any]) -> str:
    """The gateway's folder on its host: config, callbacks module, usage lines."""
    return f"{facts['workdir']}/{FOLDER}/{spec.name}"


def config_path(spec: GatewaySpec, facts: dict[str, Any]) -> str:
    return f"{home(spec, facts)}/config.yaml"


def module_path(spec: GatewaySpec, facts: dict[str, Any], name: str) -> str:
    """Where one of the SHIPPED modules lies on the host: beside the config."""
    return f"{home(spec, facts)}/{name}"


def usage_path(spec: GatewaySpec, facts: dict[str, Any]) -> str:
    return f"{home(spec, facts)}/usage.jsonl"


class EnvNotReady(ValueError):
    """The env a gateway names has no venv llmops built on its host (yet)."""


def venv_of(spec: GatewaySpec, facts: dict[str, Any]) -> str:
    """The venv LiteLLM runs from: the env's set as its path points now (facts["env"], from
    observe: the set's own folder, so the launch hash changes when the env's set does and an
    upgrade or rollback of the env restarts the gateway on it), else the spec's venv."""
    if spec.env is None:
        return spec.venv_path(str(facts["workdir"]))
    env = facts.get("env") or {}
    python = str(env.get("python") or "")
    if not python.endswith("/bin/python"):
        raise EnvNotReady(f"env {spec.env} has no venv on {spec.host}"
                          + (f" ({env['error']})" if env.get("error") else "")
                          + f": reconcile it first (llmops env up {spec.env})")
    return python.removesuffix("/bin/python")


LAUNCH = ("import codecs, sys; codecs.lookup('ascii'); from litellm import run_server; "
          "sys.argv[0] = 'litellm'; sys.exit(run_server())")
"""What the venv's `bin/litellm` runs, after looking up the ascii codec. LiteLLM 1.108's
gunicorn master starts a thread (the Prisma query-engine reaper) right before it forks the
worker, and that thread's first /proc scan opens files as ascii, importing encodings.ascii;
a fork in that moment leaves the module's import lock held in the worker, which then hangs
for good at its first ascii open (apscheduler's tzlocal, at startup: py-spy showed the
worker in `_ModuleLock.acquire` under `search_function`, the master's reaper idle). Seen
on 1 start in 6 at load 10-20, and by gate3 once: each cost wait-ready's 150 s restart.
With the codec looked up before the thread starts, no import happens there."""


def litellm_argv(spec: GatewaySpec, facts: dict[str, Any]) -> list[str]:
    return [f"{venv_of(spec, facts)}/bin/python", "-c", LAUNCH,
            "--config", config_path(spec, facts),
            "--host", spec.listen, "--port", str(spec.port),
            "--run_gunicorn", "--num_workers", "1"]


def litellm_env(spec: GatewaySpec, facts: dict[str, Any]) -> dict[str, str]:
    """The environment llmops adds (the key's variable is added by apply, by value).
    LITELLM_LOG=ERROR: LiteLLM's INFO logging per request cost ~40% of its overhead here
    (benchmarks/gateway.py: 41 -> 23 ms median)."""
    return {"LITELLM_LOCAL_MODEL_COST_MAP": "True", USAGE_ENV: usage_path(spec, facts),
            "PYTHONUNBUFFERED": "1", "LITELLM_LOG": "ERROR"}


def launch_hash(spec: GatewaySpec, facts: dict[str, Any]) -> str:
    """argv + environment + the key's NAME (never its value): a change restarts the process;
    everything else is in the config, which a HUP reloads."""
    blob = json.dumps({"argv": litellm_argv(spec, facts), "env": litellm_env(spec, facts),
                       "key": spec.master_key_env}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
