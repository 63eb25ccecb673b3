"""The cluster kind's pure parts, from data files: plan steps (`[desired]`/`[current]` cluster
specs named c1, `[observed.nodes.HOST]`, `[[steps]]`; `{hash:HOST}` stands for the launch hash
that node would get, host HOST's address is 10.0.0.N in node order) and refusals of bad specs
(`[expect_error] contains`); the state word and the resource comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
from plancases import cases_of, check_steps, load

from llmops.ops.kinds.cluster import ClusterSpec, plan_cluster
from llmops.ops.kinds.cluster.checks import as_ray_sees, resource_mismatch
from llmops.ops.kinds.cluster.launch import launch_hash
from llmops.ops.kinds.cluster.observed import ClusterObserved
from llmops.ops.kinds.cluster.view import cluster_state

CASES = cases_of("cluster")
PY = "/usr/bin/python3"


def spec_of(case: dict[str, Any], key: str) -> ClusterSpec | None:
    data = case.get(key)
    return ClusterSpec(**{"name": "c1", **data}) if data is not None else None


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case:
        with pytest.raises(pydantic.ValidationError) as err:
            spec_of(case, "desired")
        for word in case["expect_error"]["contains"]:
            assert word in str(err.value)
        return
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    spec = desired or current
    assert spec is not None
    hosts = list(dict.fromkeys([*(current.nodes() if current else []), *spec.nodes()]))
    addresses = {h: f"10.0.0.{i + 1}" for i, h in enumerate(hosts)}
    raw = case.get("observed", {})
    for host, node in raw.get("nodes", {}).items():
        if str(node.get("hash", "")).startswith("{hash:"):
            node["hash"] = launch_hash(spec, host, PY, addresses)
    observed = ClusterObserved.model_validate(
        {**raw, "addresses": addresses, "python": dict.fromkeys(hosts, PY)})
    check_steps(plan_cluster(desired, current, observed), case.get("steps", []))


def test_start_argv_and_env_are_the_ray_start_they_say() -> None:
    spec = ClusterSpec(name="c1", head="ca", workers=["cb"], num_cpus=1,
                       resources={"accel": 1}, interface="eth1")
    observed = ClusterObserved(addresses={"ca": "10.0.0.1", "cb": "10.0.0.2"},
                               python={"ca": PY, "cb": PY})
    head, worker, _wait = plan_cluster(spec, None, observed)
    assert list(worker.argv) == [
        PY, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
        "--node-ip-address", "10.0.0.2", "--temp-dir", "/tmp/ray-c1/n1",
        "--object-store-memory", "500000000", "--address", "10.0.0.1:6379", "--num-cpus", "1",
        "--resources", '{"accel": 1.0}']
    assert "--head" in head.argv and "--include-dashboard" in head.argv
    env = worker.data.env  # type: ignore[attr-defined]
    assert env["RAY_AUTH_MODE"] == "disabled" and env["GLOO_SOCKET_IFNAME"] == "eth1"
    assert env["VLLM_HOST_IP"] == "10.0.0.2"


def test_state_word_and_resources() -> None:
    assert cluster_state(2, 2, 2) == "up"
    assert cluster_state(2, 1, 1) == "degraded"
    assert cluster_state(2, 2, None) == "down"
    assert cluster_state(2, 0, None) == "stopped"
    spec = ClusterSpec(name="c1", head="ca", num_cpus=1, resources={"accel": 1},
                       object_store_mb=100)
    ok = {"CPU": 1.0, "accel": 1.0, "object_store_memory": 100_000_000.0}
    assert resource_mismatch(spec, ok) == []
    assert resource_mismatch(spec, {**ok, "accel": 0.0}) == ["accel 0 != 1"]
    assert as_ray_sees({"local": "127.0.0.1"}, {"192.0.2.2": {}}) == {"local": "192.0.2.2"}
