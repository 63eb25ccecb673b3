"""Server spec -> the exact vLLM command line and environment, as pure functions.

Kept apart from the plan so the argv a server is started with can be printed on its own
(`llmops server command NAME`) and checked against vLLM's own sources.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmops.ops.kinds.hoststate import has_gpus
from llmops.ops.kinds.server.flags import ALLOWED_FLAGS, API_SERVER_MODULE, check_args, flag_argv
from llmops.ops.kinds.server.spec import COLOURS, ServerSpec


def world_size(spec: ServerSpec) -> int:
    return spec.tp * spec.pp


def cpu_kvcache_gib(spec: ServerSpec, facts: dict[str, Any]) -> int:
    """KV-cache GiB on a CPU host: the spec's, else 1/16 of RAM (1..64 GiB)."""
    if spec.cpu_kvcache_gib is not None:
        return spec.cpu_kvcache_gib
    ram_gib = int(facts.get("ram_total_bytes") or 0) // 2**30
    return max(1, min(64, ram_gib // 16))


def cpu_threads_bind(
    spec: ServerSpec, facts: dict[str, Any], colour: str | None = None
) -> str | None:
    """Core ranges per rank ("0-7|8-15"); None leaves vLLM's own choice for one rank.

    A colour (blue-green on a CPU host) gets its own half of the cores where each rank can
    have one: vLLM's own choice binds every colour to the same cores, where the live one,
    busy serving, starves the other's start."""
    if spec.cpu_omp_threads_bind is not None:
        return spec.cpu_omp_threads_bind
    ranks = world_size(spec)
    cores = int(facts.get("cpu_count") or ranks)
    first, count = 0, cores
    if colour is not None and cores // 2 >= ranks:
        count = cores // 2
        first = COLOURS.index(colour) * count
    elif ranks == 1:
        return None
    per = max(1, count // ranks)
    parts = []
    for r in range(ranks):
        lo, hi = first + r * per, first + r * per + per - 1
        parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
    return "|".join(parts)


LOOPBACK = "127.0.0.1"


def bind_address(spec: ServerSpec) -> str:
    """Where vLLM itself listens. Behind a forwarder (blue-green, standby) a colour listens
    on loopback whatever `listen` says: only the forwarder is reachable from outside, and
    standby's dev-mode endpoints (/sleep, /wake_up, /collective_rpc) never are."""
    return spec.listen if spec.strategy == "recreate" else LOOPBACK


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "localhost")


def reach_address(spec: ServerSpec) -> str:
    """The address on the host that reaches the server's `port` (tunnels, health checks):
    loopback when it listens on a wildcard, else the address it listens on."""
    return {"0.0.0.0": LOOPBACK, "::": "::1", "localhost": LOOPBACK}.get(spec.listen, spec.listen)


def reach_for(spec: ServerSpec, proc: str) -> str:
    """The address that reaches one of the server's processes: colours are on loopback."""
    colours = {f"{spec.name}-{c}" for c in COLOURS}
    return LOOPBACK if proc in colours else reach_address(spec)


class EnvNotReady(RuntimeError):
    """The server names an env whose venv is not on the host (not built, or not readable)."""


def launch_python(spec: ServerSpec, facts: dict[str, Any]) -> str:
    """The python vLLM runs with: the env's venv as the set it points at now
    (`<env root>/venvs/<set>/bin/python`, facts["env"] from the kind's observe), else the
    host's. The set's own path, not the env's symlink: a process started through the symlink
    would import from whatever set the symlink points at later (a kept colour after an
    upgrade), and the set in argv puts the env's identity into the launch hash."""
    if spec.env is None:
        return str(facts.get("python") or "python3")
    env = facts.get("env") or {}
    if not env.get("python"):
        raise EnvNotReady(
            f"env {spec.env} has no venv on {spec.host}"
            + (f" ({env['error']})" if env.get("error") else "")
            + f": reconcile it first (llmops env up {spec.env})")
    return str(env["python"])


def vllm_argv(spec: ServerSpec, facts: dict[str, Any], port: int | None = None) -> list[str]:
    """The command that starts the server: the env's or the host's python, the OpenAI API
    server module."""
    python = launch_python(spec, facts)
    argv = [
        python,
        "-m",
        API_SERVER_MODULE,
        "--model",
        spec.model,
        "--host",
        bind_address(spec),
        "--port",
        str(port if port is not None else spec.port),
    ]
    gpu = has_gpus(facts)
    extra = check_args(spec.args)
    if spec.tp > 1:
        argv += ["--tensor-parallel-size", str(spec.tp)]
    if spec.pp > 1:
        argv += ["--pipeline-parallel-size", str(spec.pp)]
    if facts.get("cluster") and "distributed-executor-backend" not in extra:
        argv += ["--distributed-executor-backend", "ray"]
    elif world_size(spec) > 1 and not gpu and "distributed-executor-backend" not in extra:
        argv += ["--distributed-executor-backend", "mp"]
    if spec.dtype != "auto":
        argv += ["--dtype", spec.dtype]
    if spec.quantization:
        argv += ["--quantization", spec.quantization]
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    if spec.gpu_memory_utilization is not None and gpu:
        argv += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    if spec.enable_lora:
        argv += ["--enable-lora"]
        if spec.max_lora_rank is not None:
            argv += ["--max-lora-rank", str(spec.max_lora_rank)]
        if spec.max_loras is not None:
            argv += ["--max-loras", str(spec.max_loras)]
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    if spec.strategy == "standby":
        argv += ["--enable-sleep-mode"]
    for flag in sorted(extra):
        argv += flag_argv(flag, extra[flag], ALLOWED_FLAGS[flag].kind)
    return argv


def is_path_model(model: str) -> bool:
    return model.startswith("/") or model.startswith("~")


def vllm_env(
    spec: ServerSpec, facts: dict[str, Any], colour: str | None = None
) -> dict[str, str]:
    """Environment on top of the host's: always offline (hub weights are fetched by the plan's
    first step, so a start never downloads and a hub outage never stops a start), CPU settings.
    The colour only moves CPU threads; the launch hash is taken without it (both colours of
    one spec match)."""
    env: dict[str, str] = {"HF_HUB_OFFLINE": "1"}
    if spec.runtime_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"  # /v1/load_lora_adapter, unload
    if spec.strategy == "standby" or spec.runtime_lora:
        env["VLLM_SERVER_DEV_MODE"] = "1"  # /sleep, /wake_up, /reset_prefix_cache: dev only
    if has_gpus(facts):
        if spec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    else:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kvcache_gib(spec, facts))
        if spec.cpu_inline_worker:  # the model in the engine-core process (spec.py says why)
            env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        bind = cpu_threads_bind(spec, facts, colour)
        if bind is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = bind
        env["VLLM_HOST_IP"] = "127.0.0.1"
    cluster = facts.get("cluster")
    if cluster:  # the ranks run on the cluster's nodes: the GCS, this node's address, gloo's
        env.update({"RAY_ADDRESS": str(cluster["address"]), "RAY_AUTH_MODE": "disabled",
                    "VLLM_HOST_IP": str(cluster["node_ip"]),
                    "GLOO_SOCKET_IFNAME": str(cluster["interface"]),
                    "NCCL_SOCKET_IFNAME": str(cluster["interface"])})
    return env


def launch_hash(spec: ServerSpec, facts: dict[str, Any]) -> str:
    """What the running process must match: argv (port left out, colours differ) + env, for
    a server on an env the manifest of the env's set, and for one sharded over a cluster the
    Ray instance its ranks joined (each node's process: a node that restarted killed them)."""
    argv = vllm_argv(spec, facts, port=0)
    found: dict[str, Any] = {"argv": argv, "env": vllm_env(spec, facts)}
    if spec.env is not None:  # the manifest the set was built to (its python is in argv)
        found["venv_manifest"] = (facts.get("env") or {}).get("manifest")
    if spec.cluster is not None:  # cluster/serving.py `instance`
        found["ray_instance"] = (facts.get("cluster") or {}).get("instance")
    blob = json.dumps(found, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
