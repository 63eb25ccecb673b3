"""The cluster kind end to end on two network-namespace sshd hosts that reach each other (the
session's one cluster lab, tests/clusterfixtures.py): bad specs refused with nothing started,
a Ray cluster up (head + worker, GCS-checked), idempotent, a server larger than the cluster
(or naming none) refused, a launch that fails leaving the cluster's diagnostics in the
journal, the SSH connection dropped mid-repair, a TP=2 vLLM server across the two hosts
answering with a single-process run's tokens, a killed worker shown degraded, an action
restarting it alone and its rollback. The cluster is left up for tests/test_cluster_sharded.py
(a PP=2 server, the cluster's actions taking it along, the version refusal, the final down)."""

from __future__ import annotations

import json
import time

import pytest
from labtools import git_log, llmops
from sharedserver import LOOSE_TARGETS, SLOW, SharedServer

pytest.register_assert_rewrite("clusterfixtures")  # before its import: a plugin
from clusterfixtures import (  # noqa: E402
    DEVICE_KEY,
    SERVER_PORT,
    ClusterLab,
    checks_ok,
    complete,
    kill_node,
    ranks_by_namespace,
    ray_pids,
    sharded_nodes_shown,
    steps,
    vllm_left,
    wait_gone,
)

pytest_plugins = ["clusterfixtures"]


def test_bad_specs_are_refused_with_nothing_started(cluster: ClusterLab) -> None:
    """Unknown host, head listed as worker, a worker twice, a bad or missing interface: exit 2
    naming the field, no commit, no Ray process."""
    before = git_log(cluster.lab)
    cases = {
        "workers": ["--workers", "nope"],
        "head": ["--head", "cb", "--workers", "cb"],
        "twice": ["--workers", "cb,cb"],
        "interface": ["--interface", "eth0;id"],
        "missing interface": ["--interface", "eth9"],
    }
    for why, extra in cases.items():
        args = [*cluster.up_args("bad"), *extra]
        done = llmops(cluster.lab, *args, check=None, timeout=120)
        assert done.returncode == 2, (why, done.stdout, done.stderr)
        said = done.stdout + done.stderr
        assert "workers" in said or "interface" in said or "head" in said, (why, said)
    assert git_log(cluster.lab) == before
    assert not ray_pids(cluster.temp_dir)


def test_cluster_up_is_checked_and_idempotent(cluster: ClusterLab) -> None:
    began = time.monotonic()
    answer = cluster.run(*cluster.up_args())
    took = time.monotonic() - began
    assert steps(answer) == ["start-head", "start-worker", "wait-nodes"]
    checks_ok(answer)
    names = {c["name"] for c in answer["action"]["checks"]}
    assert {"nodes joined", "node resources", "GPUs as each host reports"} <= names
    report = cluster.run("cluster", "status", "rc")
    assert report["state"] == "up" and report["alive"] == 2
    where = {n["host"]: n["address"] for n in report["nodes"]}
    assert where == {h.name: h.address for h in cluster.hosts}
    for node in report["nodes"]:
        assert node["resources"][DEVICE_KEY] == 1 and node["resources"]["CPU"] == 1
    plan = {row["resource"]: row for row in cluster.run("plan")}
    assert plan["cluster/rc"]["steps"] == []  # a second reconcile would do nothing
    assert not [r for r in plan.values() if r.get("state") == "unclaimed"], plan  # workers
    print(f"cluster up (2 nodes) {took:.1f} s")


def test_server_larger_than_the_cluster_is_refused(cluster: ClusterLab) -> None:
    """A server naming the cluster with pipeline_parallel_size 3 over its 2 nodes: exit 2
    naming pp, nothing written."""
    args = ["server", "up", "sh", "--host", "ca", "--cluster", "rc", "--model", "/models/none",
            "--port", "18951", "--pp", "3"]
    before = git_log(cluster.lab)
    done = llmops(cluster.lab, *args, check=2, timeout=120)
    assert "pp" in done.stdout + done.stderr and "cluster rc" in done.stdout + done.stderr
    done = llmops(cluster.lab, "server", "up", "sh", "--host", "ca", "--cluster", "nope",
                  "--model", "/models/none", check=2, timeout=120)
    assert "cluster" in done.stdout + done.stderr
    assert git_log(cluster.lab) == before


def test_a_launch_that_fails_puts_the_cluster_in_the_journal(cluster: ClusterLab,
                                                             shared_server: SharedServer
                                                             ) -> None:
    """A PP=2 server not healthy in its start timeout: the action fails and reverts, and its
    error (the journal's) carries the cluster's diagnostics: the GCS's nodes, its placement
    groups, each node's last Ray lines and its newest Ray worker logs (vLLM's ranks; in 10 s
    there may be none yet, said so)."""
    failed = cluster.run("server", "up", "late", "--host", "ca", "--cluster", "rc", "--model",
                         str(shared_server.model), "--port", str(SERVER_PORT + 1), "--pp", "2",
                         "--dtype", "float32", "--max-model-len", "256", "--cpu-kvcache-gib",
                         "1", "--arg", "enforce-eager=true", "--start-timeout-s", "10",
                         *LOOSE_TARGETS, check=1, timeout=SLOW)
    action = failed["action"]
    error = action["error"]
    assert action["status"] == "failed, reverted", action
    assert "not healthy after 10s" in error and "; cluster rc: GCS: " in error, error
    assert all(f"; {host.name}: " in error for host in cluster.hosts), error
    assert all(f"; {host.name} workers: " in error for host in cluster.hosts), error
    journalled = {a["id"]: a for a in cluster.run("history")}[action["id"]]
    assert "; cluster rc: GCS: " in (journalled.get("error") or ""), journalled
    assert "late" not in {r["name"] for r in cluster.run("server", "list")}
    deadline = time.monotonic() + 60  # Ray ends the failed start's actors after its driver
    while vllm_left(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert not vllm_left(cluster), vllm_left(cluster)  # the next tests count actors


def test_ssh_drop_mid_worker_start(cluster: ClusterLab) -> None:
    """The worker's Ray gone, and its repair under way when the worker's sshd dies with every
    connection it serves (the host went away): the action fails naming cb and its revert stays
    pending (`plan` says so while cb is down); once sshd is back `plan` finishes the revert: the
    cluster is up with both nodes, and the only process running under cb's run folder is the
    node the lab's spec claims (nothing orphaned)."""
    from droptools import act_dropping, finish_revert
    from test_server_drop import orphans

    from llmops.ops.kinds.cluster.spec import ClusterSpec
    from llmops.rollback.engine import Change

    worker = cluster.hosts[1]
    kill_node(cluster, "n1")
    spec = ClusterSpec.model_validate(cluster.run("cluster", "show", "rc")["spec"])
    changed = spec.model_copy(update={"start_timeout_s": spec.start_timeout_s + 1})
    try:  # any line of the cluster's: only the worker's `ray start` prints in this action
        act_dropping(cluster.lab, Change("cluster", "rc", changed), "cluster rc up", worker,
                     lambda line: True)
        finish_revert(cluster.lab, "cluster/rc", worker)
        report = cluster.run("cluster", "status", "rc")
        assert report["state"] == "up" and report["alive"] == 2, report
        assert set(orphans(worker)) == {spec.proc_name(worker.name)}, orphans(worker)
    finally:
        if worker.sshd_pid is None:
            worker.start()


def test_tp2_server_answers_across_the_two_hosts(cluster: ClusterLab,
                                                shared_server: SharedServer) -> None:
    """The tiny model with tensor_parallel_size 2 on the cluster: one rank in each host's
    namespace, `server show` listing a worker on each node, the tokens of the single-process
    shared server at temperature 0; `server down` leaves no vLLM actor and no live group.
    After the SSH-drop test, which leaves both nodes up."""
    head = cluster.hosts[0]
    model = str(shared_server.model)
    report = cluster.run("cluster", "status", "rc")
    assert report["state"] == "up", report
    began, gone = time.monotonic(), None
    try:
        answer = cluster.run("server", "up", "tp", "--host", "ca", "--cluster", "rc", "--model",
                             model, "--port", str(SERVER_PORT + 3), "--tp", "2", "--dtype",
                             "float32", "--max-model-len", "256", "--cpu-kvcache-gib", "1",
                             "--arg", "enforce-eager=true", *LOOSE_TARGETS, timeout=SLOW)
        took = time.monotonic() - began
        checks_ok(answer)
        began = time.monotonic()
        sharded = complete(SERVER_PORT + 3, model, head.namespace)
        first = time.monotonic() - began
        began = time.monotonic()
        again = complete(SERVER_PORT + 3, model, head.namespace)
        second = time.monotonic() - began
        single = complete(shared_server.port, model)
        assert len(sharded["token_ids"]) == 16, sharded
        for key in ("token_ids", "text"):
            assert sharded[key] == again[key] == single[key], (sharded, single)
        actors = ranks_by_namespace(cluster)
        assert sorted(ns for _, ns in actors.values()) == sorted(h.namespace
                                                                for h in cluster.hosts), actors
        sharded_nodes_shown(cluster, "tp", actors)
        began = time.monotonic()
        gone = cluster.run("server", "down", "tp", timeout=180)
        down = time.monotonic() - began
        checks_ok(gone)
    finally:
        if gone is None:
            cluster.run("server", "down", "tp", check=None, timeout=180)
    left, live = wait_gone(cluster)
    assert not left and not live, (left, live)
    print(f"TP=2 server up {took:.1f} s, first 16-token completion {first:.2f} s, "
          f"second {second:.2f} s, down {down:.1f} s: {sharded['token_ids']}")


def test_killed_worker_is_degraded_and_an_action_brings_it_back(cluster: ClusterLab) -> None:
    """The worker's Ray killed (every process of its node): status says degraded (exit 1);
    a change reconciles the dead worker alone (the head stays); its rollback reverts the
    spec and leaves every node up, all checks green. The cluster stays up for
    tests/test_cluster_sharded.py, whose last test takes it down."""
    kill_node(cluster, "n1")
    done = llmops(cluster.lab, "cluster", "status", "rc", "--json", check=1, timeout=120)
    report = json.loads(done.stdout)
    assert report["state"] == "degraded"
    assert {n["host"]: n["process"] for n in report["nodes"]}["cb"] != "running"
    answer = cluster.run(*cluster.up_args("rc", "--start-timeout-s", "150"))
    assert "start-head" not in steps(answer) and "start-worker" in steps(answer)
    checks_ok(answer)
    back = cluster.run("rollback", "--last", "cluster/rc")
    checks_ok(back)
    report = cluster.run("cluster", "status", "rc")
    assert report["state"] == "up" and report["alive"] == 2
    assert len(ray_pids(cluster.temp_dir)) > 0
