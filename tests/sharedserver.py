"""One CPU vLLM server for the whole session, for tests that read from a server without
changing how it runs (bench, eval, alerts, status): one start instead of one per module.

Tests may change fields that don't restart vLLM (targets, alert thresholds) through actions;
whoever does puts them back. A test that restarts or stops the server starts its own."""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from labtools import llmops, llmops_json

from llmops.ops.kinds.host import HostSpec
from llmops.ops.transport import LocalTransport

SHARED_PORTS = range(18901, 18941)
"""The shared server takes the first port here that nothing answers on: vLLM binds with
SO_REUSEPORT, so a second server on a taken port starts fine and the kernel splits the
connections between the two (another lab's server then answers this one's checks)."""


def free_port(ports: range = SHARED_PORTS) -> int:
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"every port in {ports} answers: stop the servers a run left behind")
SLOW = 600  # seconds a vLLM start may take on a busy shared box
LOOSE_TARGETS = ("--target-ttft-p95-ms", "10000", "--target-output-tps", "1")
"""For servers whose tests are not about targets: the checklist's `targets` check holds a
server to them after every action, and a loaded 2-core CI box must not revert it for that."""
INLINE = ("--cpu-inline-worker",)
"""A one-rank test server runs its model in vLLM's engine process: one vLLM import fewer per
start, and starts are most of CI's time. tests/test_server_vllm.py keeps vLLM's own worker
process, so both ways are served in every run."""


@dataclass(frozen=True)
class SharedServer:
    """A lab with host `local` and the recreate server `name` serving the tiny model."""

    lab: Path
    name: str
    port: int
    model: Path


def make_tiny_model(out: Path) -> Path:
    """The notes' tiny Llama, made by the host-side script the demo uses (~4 s)."""
    t = LocalTransport(HostSpec(name="local", local=True, python=sys.executable))
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    t.python_script(source, [str(out)], timeout=300).check()
    return out


def start_shared_server(root: Path) -> SharedServer:
    lab = root / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"))
    model = make_tiny_model(root / "tiny")
    port = free_port()
    done = llmops_json_slow(
        lab, "server", "up", "shared", "--host", "local", "--model", str(model),
        "--port", str(port), "--dtype", "float32", "--max-model-len", "256",
        "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true",
        *LOOSE_TARGETS, *INLINE,
    )
    assert done["ok"], done
    return SharedServer(lab, "shared", port, model)


def llmops_json_slow(lab: Path, *args: str) -> dict[str, Any]:
    return dict(json.loads(llmops(lab, *args, "--json", timeout=SLOW).stdout))


def stop_shared_server(server: SharedServer) -> None:
    if llmops_json(server.lab, "server", "list", check=None):
        llmops(server.lab, "server", "down", server.name, check=None, timeout=SLOW)
