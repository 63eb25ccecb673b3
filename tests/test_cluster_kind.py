"""The cluster kind end to end on two network-namespace sshd hosts that reach each other
(root namespace ip_forward=1 and a default route in each, restored/removed afterwards; each
namespace's interface renamed eth0, as a real host's): bad specs refused with nothing started,
a Ray cluster up (head + worker, GCS-checked), idempotent, a server larger than the cluster
(or naming none) refused, a PP=2 vLLM server across the two hosts answering (rank 0 on the
head's namespace, rank 1 on the worker's, the text of a single-process run) and its down
leaving nothing, a killed worker shown degraded, an action restarting it alone and
its rollback, and the cluster down with nothing left. ONE cluster for the module.

The hosts' python is a venv whose .pth puts the TEST-ONLY shim tests/rayshim/ on the path
(see its docstring: what the CPU build of vLLM needs to run on Ray, and to run PP under
enforce-eager): set only through the test hosts' python, never through product code."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from labtools import git_log, llmops
from sharedserver import LOOSE_TARGETS, SLOW, SharedServer
from sshhosts import SshHost, SshHostFactory, sh
from test_console_clusters import sharded_detail_live

HERE = Path(__file__).resolve().parent
SHIM = HERE / "rayshim"
PORT = 26380
SERVER_PORT = 26391
PROMPT = "The operator rolled the server back in one"
DEVICE_KEY = "llmops_cpu"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@dataclass
class ClusterLab:
    lab: Path
    hosts: list[SshHost]
    temp_dir: str
    python: str

    def run(self, *args: str, check: int | None = 0, timeout: float = 300) -> Any:
        done = llmops(self.lab, *args, "--json", check=check, timeout=timeout)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def up_args(self, name: str = "rc", *extra: str) -> list[str]:
        return ["cluster", "up", name, "--head", "ca", "--workers", "cb", "--interface",
                "eth0", "--port", str(PORT), "--num-cpus", "1", "--object-store-mb", "100",
                "--resources", f"{DEVICE_KEY}=1", "--temp-dir", self.temp_dir, *extra]


def shim_python(root: Path) -> str:
    """A venv of the base interpreter whose .pth adds this venv's packages and the shim."""
    venv = root / "shimvenv"
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    target = next((venv / "lib").glob("python3*/site-packages"))
    (target / "llmops_rayshim.pth").write_text(
        f"{SHIM}\nimport site; site.addsitedir({site!r})\n")
    return str(venv / "bin" / "python")


def reach_each_other(host: SshHost) -> None:
    """The namespace's interface is eth0 (one name on every node) with a default route."""
    ns = ("ip", "netns", "exec", host.namespace, "ip")
    sh(*ns, "link", "set", host.veth + "p", "down")
    sh(*ns, "link", "set", host.veth + "p", "name", "eth0")
    sh(*ns, "link", "set", "eth0", "up")
    sh(*ns, "route", "replace", "default", "via", host.gateway)


def steps(answer: dict[str, Any]) -> list[str]:
    return [s["verb"] for s in answer["action"]["steps"] if s.get("phase") != "revert"]


def checks_ok(answer: dict[str, Any]) -> None:
    checks = answer["action"]["checks"]
    assert checks and all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]


def ray_pids(temp_dir: str) -> list[int]:
    """Every process of this module's Ray (their command lines name its temp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def cluster(ssh_host_factory: SshHostFactory, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ClusterLab]:
    root = tmp_path_factory.mktemp("cluster")
    was = FORWARD.read_text().strip()
    temp_dir = f"/tmp/llmops-rc-{os.getpid()}"
    hosts = [ssh_host_factory("ca"), ssh_host_factory("cb")]
    found = ClusterLab(root / "lab", hosts, temp_dir, shim_python(root))
    try:
        FORWARD.write_text("1\n")
        for host in hosts:
            reach_each_other(host)
            llmops(found.lab, "host", "add", host.name, "--address", host.address, "--user",
                   host.user, "--key", str(host.key_path), "--python", found.python,
                   "--workdir", str(host.workdir), "--trust", host.host_pub_fingerprint,
                   timeout=120)
        yield found
    finally:
        llmops(found.lab, "cluster", "down", "rc", check=None, timeout=180)
        for pid in ray_pids(temp_dir):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", temp_dir], check=False)
        FORWARD.write_text(f"{was}\n")


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


def netns_of(pid: int) -> str:
    done = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                          text=True, timeout=30, check=False)
    return done.stdout.strip()


def titles(*marks: bytes) -> dict[int, str]:
    """Processes whose title (Ray and vLLM set it) has one of the marks: pid -> title."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if any(mark in title for mark in marks):
                found[int(entry.name)] = title.decode(errors="replace")
    return found


RANK_MARKS = (b"RayWorkerProc", b"Worker_PP")  # vLLM's Ray actors (V2 executor), its ranks


def kill_node(cluster: ClusterLab, node_dir: str) -> None:
    """Every process of one node's Ray (n0 the head, n1 the worker), as a host going away."""
    for pid in ray_pids(f"{cluster.temp_dir}/{node_dir}"):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def rank_addresses(lines: list[str]) -> dict[int, str]:
    """Each pipeline rank's node address, from Ray's prefix on the lines it forwards to the
    driver: `(RayWorkerProc pid=N, ip=A) ... Worker_PP<i> ...`."""
    found: dict[int, str] = {}
    for line in lines:
        match = re.search(r"ip=([0-9.]+)\).*?Worker_PP(\d)", line)
        if match:
            found.setdefault(int(match.group(2)), match.group(1))
    return found


def complete(port: int, model: str, namespace: str | None = None) -> dict[str, Any]:
    """A temperature-0 completion from the server on 127.0.0.1:port (vLLM binds loopback;
    a namespace host's loopback is reached from inside its namespace)."""
    body = {"model": model, "prompt": PROMPT, "max_tokens": 16, "temperature": 0.0,
            "ignore_eos": True, "return_token_ids": True}  # the tiny model stops at once
    url = f"http://127.0.0.1:{port}/v1/completions"
    if namespace is None:
        resp = httpx.post(url, json=body, timeout=120)
        resp.raise_for_status()
        return dict(resp.json()["choices"][0])
    done = subprocess.run(["ip", "netns", "exec", namespace, "curl", "-sSf", "-m", "120",
                           "-H", "Content-Type: application/json", "-d", json.dumps(body),
                           url], capture_output=True, text=True, timeout=150, check=True)
    return dict(json.loads(done.stdout)["choices"][0])


def forwarded_ranks(cluster: ClusterLab, wanted: int, seconds: float = 240) -> dict[int, str]:
    """The ranks' addresses once rank `wanted` has a line in the server's log: Ray's log
    monitor forwards a remote actor's lines to the driver late (in one CI run the worker's
    lines arrived after the first completions had been served; in one at load 13 none of
    either rank within 90 s)."""
    deadline = time.monotonic() + seconds
    while True:
        ranks = rank_addresses(cluster.run("server", "logs", "pp", "-n", "3000"))
        if wanted in ranks or time.monotonic() > deadline:
            return ranks
        time.sleep(2)


def test_a_launch_that_fails_puts_the_cluster_in_the_journal(cluster: ClusterLab,
                                                             shared_server: SharedServer
                                                             ) -> None:
    """A PP=2 server not healthy in its start timeout: the action fails and reverts, and its
    error (the journal's) carries the cluster's diagnostics: the GCS's nodes, its placement
    groups, each node's last Ray lines. Before the PP=2 test, which leaves the worker dropped
    (a preflight then refuses any server on the cluster: every node must be alive)."""
    failed = cluster.run("server", "up", "late", "--host", "ca", "--cluster", "rc", "--model",
                         str(shared_server.model), "--port", str(SERVER_PORT + 1), "--pp", "2",
                         "--dtype", "float32", "--max-model-len", "256", "--cpu-kvcache-gib",
                         "1", "--arg", "enforce-eager=true", "--start-timeout-s", "10",
                         *LOOSE_TARGETS, check=1, timeout=SLOW)
    action = failed["action"]
    error = action["error"]
    assert action["status"] == "failed, reverted", action
    assert "not healthy after 10s" in error and "; cluster rc: GCS: " in error, error
    assert all(f"{host.name}: " in error for host in cluster.hosts), error
    journalled = {a["id"]: a for a in cluster.run("history")}[action["id"]]
    assert "; cluster rc: GCS: " in (journalled.get("error") or ""), journalled
    assert "late" not in {r["name"] for r in cluster.run("server", "list")}
    ours = {host.namespace for host in cluster.hosts}
    deadline = time.monotonic() + 60  # Ray ends the failed start's actors after its driver

    def left() -> list[int]:
        return [pid for pid in titles(b"VLLM::", *RANK_MARKS) if netns_of(pid) in ours]

    while left() and time.monotonic() < deadline:
        time.sleep(1)
    assert not left(), left()  # the PP=2 test counts the actors in each namespace


def test_pp2_server_answers_across_the_two_hosts(cluster: ClusterLab,
                                                shared_server: SharedServer) -> None:
    """The tiny model with pipeline_parallel_size 2 on the cluster (vLLM's Ray backend):
    rank 0 in the head's namespace, rank 1 in the worker's, one placement group bundle per
    node; a temperature-0 completion gives the text the single-process shared server gives;
    `server down` leaves no vLLM process and no live placement group."""
    head, worker = cluster.hosts
    ours = {head.namespace, worker.namespace}
    model = str(shared_server.model)
    began, gone = time.monotonic(), None
    try:
        answer = cluster.run("server", "up", "pp", "--host", "ca", "--cluster", "rc", "--model",
                             model, "--port", str(SERVER_PORT), "--pp", "2", "--dtype",
                             "float32", "--max-model-len", "256", "--cpu-kvcache-gib", "1",
                             "--arg", "enforce-eager=true", *LOOSE_TARGETS, timeout=SLOW)
        took = time.monotonic() - began
        checks_ok(answer)
        began = time.monotonic()
        sharded = complete(SERVER_PORT, model, head.namespace)
        first = time.monotonic() - began
        began = time.monotonic()
        again = complete(SERVER_PORT, model, head.namespace)
        second = time.monotonic() - began
        single = complete(shared_server.port, model)
        assert len(sharded["token_ids"]) == 16, sharded
        for key in ("token_ids", "text"):  # the same tokens as one process computes
            assert sharded[key] == again[key] == single[key], (sharded, single)
        actors = {pid: (title, netns_of(pid)) for pid, title in titles(*RANK_MARKS).items()}
        actors = {pid: seen for pid, seen in actors.items() if seen[1] in ours}
        assert sorted(ns for _, ns in actors.values()) == sorted(ours), actors
        ranks = forwarded_ranks(cluster, 1)
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
        refused_live(cluster, model)  # both devices held by pp: a second server is refused
        kill_node(cluster, "n1")  # the worker node drops: the server says which node
        row = {r["name"]: r for r in cluster.run("server", "list")}["pp"]
        assert row["state"].startswith(("degraded", "crashed")), row
        assert "node cb down" in row["state"], row
        dropped = {n["host"]: n for n in cluster.run("server", "show", "pp")["nodes"]}
        assert dropped["ca"]["ray_alive"] and not dropped["cb"]["ray_alive"], dropped
        began = time.monotonic()
        gone = cluster.run("server", "down", "pp", timeout=180)
        down = time.monotonic() - began
        checks_ok(gone)
    finally:  # the module's later tests take the cluster down: the server must not hold it
        if gone is None:
            cluster.run("server", "down", "pp", check=None, timeout=180)
    deadline = time.monotonic() + 60  # Ray ends the actors and the group after the driver
    while True:
        left = [pid for pid in titles(b"VLLM::", *RANK_MARKS) if netns_of(pid) in ours]
        report = cluster.run("cluster", "status", "rc", check=None)  # degraded: cb dropped
        live = [pg for pg in report["placement"] if pg["state"] == "CREATED"]
        if not (left or live) or time.monotonic() > deadline:
            break
    assert not left and not live, (left, live)
    print(f"PP=2 server up {took:.1f} s, first 16-token completion {first:.2f} s, "
          f"second {second:.2f} s, down {down:.1f} s, console detail {console_s:.1f} s: "
          f"{sharded['token_ids']}")


def sharded_nodes_shown(cluster: ClusterLab, server: str,
                        actors: dict[int, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """`server show --json` of a server sharded over both hosts: each node alive in Ray, at
    its address, with the one vLLM worker that runs in that host's namespace (the pid the
    kernel sees there), and no GPU with the probe's note."""
    shown = cluster.run("server", "show", server)
    assert shown["cluster"] == {"name": "rc", "state": "up", "alive": 2, "expected": 2,
                                "device": DEVICE_KEY}, shown["cluster"]
    nodes = {n["host"]: n for n in shown["nodes"]}
    for host in cluster.hosts:
        node = nodes[host.name]
        assert node["ray_alive"] and node["address"] == host.address, node
        there = [pid for pid, (_, ns) in actors.items() if ns == host.namespace]
        assert [w["pid"] for w in node["workers"]] == there, (node, actors)
        assert node["gpus"] == [] and node["gpu_note"].startswith("no GPU: "), node
    return nodes


def refused_live(cluster: ClusterLab, model: str) -> None:
    """A second server on the head while the PP=2 server holds both nodes' devices: the spec
    fits the cluster (1 rank of 2), the live free devices do not — exit 2 naming the node,
    who holds it and the fix; nothing written, no vLLM started."""
    before = git_log(cluster.lab)
    ours = {host.namespace for host in cluster.hosts}

    def engines() -> set[int]:
        return {pid for pid in titles(b"VLLM::", *RANK_MARKS) if netns_of(pid) in ours}

    running = engines()
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
    assert engines() == running
    print(f"live placement refusal {time.monotonic() - began:.1f} s")


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
    head, worker = cluster.hosts
    ours = {head.namespace, worker.namespace}
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
        actors = {pid: (title, netns_of(pid)) for pid, title in titles(*RANK_MARKS).items()}
        actors = {pid: seen for pid, seen in actors.items() if seen[1] in ours}
        assert sorted(ns for _, ns in actors.values()) == sorted(ours), actors
        sharded_nodes_shown(cluster, "tp", actors)
        began = time.monotonic()
        gone = cluster.run("server", "down", "tp", timeout=180)
        down = time.monotonic() - began
        checks_ok(gone)
    finally:
        if gone is None:
            cluster.run("server", "down", "tp", check=None, timeout=180)
    deadline = time.monotonic() + 60
    while True:
        left = [pid for pid in titles(b"VLLM::", *RANK_MARKS) if netns_of(pid) in ours]
        report = cluster.run("cluster", "status", "rc", check=None)
        live = [pg for pg in report["placement"] if pg["state"] == "CREATED"]
        if not (left or live) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not left and not live, (left, live)
    print(f"TP=2 server up {took:.1f} s, first 16-token completion {first:.2f} s, "
          f"second {second:.2f} s, down {down:.1f} s: {sharded['token_ids']}")


def test_killed_worker_is_degraded_and_an_action_brings_it_back(cluster: ClusterLab) -> None:
    """The worker's Ray killed (every process of its node): status says degraded (exit 1);
    a change reconciles the dead worker alone (the head stays); its rollback reverts the
    spec and leaves every node up, all checks green."""
    kill_node(cluster, "n1")  # (the PP=2 test dropped it already when run before)
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
    gone = cluster.run("cluster", "down", "rc", timeout=180)
    assert steps(gone) == ["stop", "stop", "forget"]
    checks_ok(gone)
    assert not ray_pids(cluster.temp_dir)
