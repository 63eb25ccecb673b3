"""The cluster kind's pure parts, from data files: plan steps (`[desired]`/`[current]` cluster
specs named c1, `[observed.nodes.HOST]`, `[[steps]]`; `{hash:HOST}` stands for the launch hash
that node would get, `{current-hash:HOST}` for the one it got from `[current]` (a revert of a
half-done change: desired is the spec before it), host HOST's address is 10.0.0.N in node
order) and refusals of bad specs
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
        elif str(node.get("hash", "")).startswith("{current-hash:") and current is not None:
            node["hash"] = launch_hash(current, host, PY, addresses)  # a half-done change
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


def test_an_action_on_the_cluster_takes_its_sharded_servers_along() -> None:
    """(pure, rollback/gateways.py `followers`) Every action on the cluster brings each
    server naming it into the action: a change that restarts nodes, the cluster reconciled as
    it is (a repair), and one whose spec restarts no node (a dropped worker restarts on any
    action; the follower restarts only if its launch hash moved). A server on another cluster
    or on none does not follow."""
    from llmops.ops.kinds.server.spec import ServerSpec
    from llmops.rollback.changes import Change
    from llmops.rollback.gateways import followers

    rc = ClusterSpec(name="rc", head="ca", workers=["cb"], resources={"accel": 1})
    sharded = ServerSpec(name="pp", host="ca", cluster="rc", model="/m", pp=2)
    elsewhere = ServerSpec(name="other", host="ca", cluster="rd", model="/m")
    plain = ServerSpec(name="plain", host="ca", model="/m", port=8001)
    specs = {("cluster", "rc"): rc, ("server", "pp"): sharded, ("server", "other"): elsewhere,
             ("server", "plain"): plain}

    def along(after: ClusterSpec) -> list[str]:
        found = followers(specs, [Change("cluster", "rc", after)], {("cluster", "rc"): rc})
        return [c.name for c in found]

    assert along(rc.model_copy(update={"port": 6380})) == ["pp"]  # the head restarts
    assert along(rc.model_copy(update={"workers": ["cb", "cc"]})) == ["pp"]
    assert along(rc.model_copy(update={"object_store_mb": 120})) == ["pp"]
    assert along(rc) == ["pp"]  # a repair: the dropped node's ranks died
    assert along(rc.model_copy(update={"start_timeout_s": 300})) == ["pp"]


def test_worker_logs_are_the_newest_non_empty_ones_without_rays_markers(tmp_path: Path) -> None:
    """raynode `worker_logs` (stdlib, run on the node) on a folder laid out as Ray lays out a
    node's temp dir: the newest non-empty worker-*.out/.err first, Ray's own marker lines
    left out, at most `files` files of `lines` lines; and the raylet's lines about workers
    it killed for memory."""
    import os

    from llmops.ops.hostside import raynode

    logs = tmp_path / "session_2026" / "logs"
    logs.mkdir(parents=True)
    (tmp_path / "session_latest").symlink_to(tmp_path / "session_2026")
    files = {"worker-a-01-11.err": ":actor_name:RayWorkerProc\nINFO load\nValueError: boom\n",
             "worker-a-01-11.out": ":actor_name:RayWorkerProc\n",
             "worker-b-01-12.err": "", "worker-c-01-13.out": "older\n",
             "python-core-worker-a.log": "not a worker's words\n",
             "raylet.out": "I started\nE 1 Workers (tasks / actors) killed due to memory "
                           "pressure (OOM) at node x\n"}
    for i, (name, text) in enumerate(files.items()):
        (logs / name).write_text(text)
        os.utime(logs / name, (1000 - i, 1000 - i))
    reply = raynode.worker_logs({"temp_dir": str(tmp_path), "lines": 2, "files": 2})
    assert reply["logs"] == [{"file": "worker-a-01-11.err", "lines": ["INFO load",
                                                                       "ValueError: boom"]},
                             {"file": "worker-c-01-13.out", "lines": ["older"]}]
    assert reply["killed"] == ["E 1 Workers (tasks / actors) killed due to memory pressure "
                               "(OOM) at node x"]  # the raylet's word on a rank it ended
    assert raynode.worker_logs({"temp_dir": str(tmp_path / "none")})["logs"] == []
