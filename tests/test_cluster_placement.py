"""The placement check a sharded server's preflight runs against the cluster's live free
devices, from data files (tests/cases/cluster/placement/*.toml: the GCS's view as raynode
returns it — free resources per node address, live actors, live jobs —, which llmops process
drives each job, the server being changed and its host; node 10.0.0.1 is ca, 10.0.0.2 cb),
and the other pure parts of placement.py: the device key, each node's GPUs in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import CASES_DIR, load

from llmops.ops.kinds.cluster import ClusterSpec
from llmops.ops.kinds.cluster.placement import (
    device_key,
    gpu_rows,
    holders,
    refusal,
    workers_by_node,
)

CASES = sorted((CASES_DIR / "cluster" / "placement").glob("*.toml"))
HOST_AT = {"10.0.0.1": "ca", "10.0.0.2": "cb"}


def decide(case: dict[str, Any]) -> tuple[str, str] | None:
    view = case["view"]
    workers = workers_by_node(view, case.get("owners", {}))
    held, own = holders(workers, HOST_AT, case.get("server"))
    free = {h: float(view["free"].get(a, {}).get(case["key"], 0)) for a, h in HOST_AT.items()}
    return refusal(case["key"], case["ranks"], case["host"], free, held, own)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_placement_case(path: Path) -> None:
    case = load(path)
    found = decide(case)
    expect = case["expect"]
    assert (found is not None) == expect["refused"], found
    if found is not None:
        what, fix = found
        for words in expect.get("contains", []):
            assert words in what, (words, what)
        for words in expect.get("fix_contains", []):
            assert words in fix, (words, fix)


def test_there_are_cases() -> None:
    assert len(CASES) >= 6


def test_device_key_is_gpu_or_the_one_stand_in() -> None:
    assert device_key(ClusterSpec(name="c1", head="ca")) == "GPU"
    assert device_key(ClusterSpec(name="c1", head="ca", num_gpus=2)) == "GPU"
    assert device_key(ClusterSpec(name="c1", head="ca", resources={"llmops_cpu": 1})) == \
        "llmops_cpu"
    assert device_key(ClusterSpec(name="c1", head="ca", num_gpus=1,
                                  resources={"llmops_cpu": 1})) == "GPU"
    assert device_key(ClusterSpec(name="c1", head="ca", resources={"a": 1, "b": 1})) == "GPU"


def test_workers_carry_their_server() -> None:
    view = {"actors": [{"class": "RayWorkerProc", "pid": 5, "job": "j1", "node": "10.0.0.2"},
                       {"class": "Other", "pid": 6, "job": "j2", "node": "10.0.0.2"}],
            "jobs": [{"id": "j1", "driver_address": "10.0.0.1", "driver_pid": 4},
                     {"id": "j2", "driver_address": "10.0.0.2", "driver_pid": 3}]}
    found = workers_by_node(view, {"j1": "pp"})
    assert found == {"10.0.0.2": [
        {"class": "RayWorkerProc", "pid": 5, "job": "j1", "owner": "pp"},
        {"class": "Other", "pid": 6, "job": "j2", "owner": None}]}
    held, own = holders(found, HOST_AT, "pp")
    assert own == {"cb": 1} and held == {"cb": ["Ray job j2"]}


def test_gpus_of_a_node_from_its_probe_and_nvml() -> None:
    cpu = gpu_rows({"gpus": [], "gpu_note": "no NVIDIA driver on this host (CPU only)"}, None)
    assert cpu == {"gpus": [], "gpu_note": "no GPU: no NVIDIA driver on this host (CPU only)"}
    assert gpu_rows({}, None)["gpu_note"] == "no GPU: the host's last probe saw no GPU"
    row = {"index": 0, "utilization_percent": 40, "memory_used_bytes": 2 << 30,
           "memory_total_bytes": 80 << 30, "power_watts": 120.0}
    assert gpu_rows({"gpus": [{"index": 0}]}, [row]) == {"gpus": [row], "gpu_note": None}
    silent = gpu_rows({"gpus": [{"index": 0}]}, None)
    assert silent["gpus"] == [] and "NVML did not answer" in silent["gpu_note"]
