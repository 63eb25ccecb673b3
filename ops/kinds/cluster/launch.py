"""Cluster spec -> the exact `ray start` command line and environment of each node, as pure
functions (printed by `llmops cluster show`, hashed to tell a node that must restart)."""

from __future__ import annotations

import hashlib
import json

from llmops.ops.kinds.cluster.spec import ClusterSpec

RAY_CLI = "ray.scripts.scripts"
"""Ray's CLI module (what the `ray` script runs), started with the host's python."""
DRAIN_S = 3
"""Ray drains a node for up to 30 s on SIGTERM (for Serve); nothing of llmops's needs it, and
a stop (or a rollback) should not wait out that half-minute."""
STARTED = "Ray runtime started"
"""What `ray start` prints once its node is up (head and worker alike)."""


def head_address(spec: ClusterSpec, addresses: dict[str, str]) -> str:
    return f"{addresses[spec.head]}:{spec.port}"


def ray_argv(spec: ClusterSpec, host: str, python: str, addresses: dict[str, str]) -> list[str]:
    """`ray start --block`: the node's daemons live as long as this process (procctl's stop
    ends them all; `ray stop` would end every Ray of the user on the machine)."""
    argv = [python, "-m", RAY_CLI, "start", "--block", "--disable-usage-stats",
            "--node-ip-address", addresses[host], "--temp-dir", spec.node_temp_dir(host),
            "--object-store-memory", str(spec.object_store_mb * 1_000_000)]
    if host == spec.head:
        argv += ["--head", "--port", str(spec.port), "--include-dashboard", "false"]
    else:
        argv += ["--address", head_address(spec, addresses)]
    if spec.num_cpus is not None:
        argv += ["--num-cpus", str(spec.num_cpus)]
    if spec.num_gpus is not None:
        argv += ["--num-gpus", str(spec.num_gpus)]
    if spec.resources:
        argv += ["--resources", json.dumps(spec.resources, sort_keys=True)]
    return argv


def ray_env(spec: ClusterSpec, host: str, addresses: dict[str, str]) -> dict[str, str]:
    """Auth mode explicit (a stray ~/.ray/auth_token would turn token auth on and workers
    fail with InvalidAuthToken); a short drain on stop; gloo/NCCL on the cluster's interface
    (else gloo advertises 127.0.0.1); vLLM's own address for the workers Ray starts here."""
    return {
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": str(DRAIN_S),
        "GLOO_SOCKET_IFNAME": spec.interface,
        "NCCL_SOCKET_IFNAME": spec.interface,
        "VLLM_HOST_IP": addresses[host],
    }


def launch_hash(spec: ClusterSpec, host: str, python: str, addresses: dict[str, str]) -> str:
    blob = json.dumps({"argv": ray_argv(spec, host, python, addresses),
                       "env": ray_env(spec, host, addresses)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
