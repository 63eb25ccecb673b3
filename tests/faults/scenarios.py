"""The kill-at-every-step scenarios, one per resource kind (issue 13, item 1).

Every kind in the registry (`rollback/kinds.KINDS`) declares one here: a cheap action that
creates a resource (so its before-state is "absent" and a rollback is a removal, with no
second vLLM start), the setup it needs in the lab, and the engine points its action reaches.
`tests/test_fault_kill.py` fails while a kind of the registry has no scenario, so a new kind
is covered by declaring its own.

`setup(root, request)` prepares a lab and returns it with the CLI arguments of the action (and
the environment it needs); it runs once per kind, the scenario's points then run one after
another on that lab: each rollback returns it to the before-state the next point starts from.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from finetune_fixtures import text_rows, tiny_model_dir, write_rows
from labtools import llmops
from sharedserver import INLINE, LOOSE_TARGETS

PY = sys.executable
CHEAP = ("after-started", "after-commit")
"""Points before any host is touched, one each side of the commit: every kind runs them (the
host scenario runs every other point too)."""


@dataclass(frozen=True)
class Action:
    """What a scenario's setup made: the lab, the action's CLI arguments, its environment."""

    lab: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    failing: list[str] | None = None
    """An action of this kind that fails mid-reconcile, for the revert path's points."""


@dataclass(frozen=True)
class Scenario:
    kind: str
    setup: Callable[[Path, pytest.FixtureRequest], Action]
    mid: tuple[str, ...]
    """Points inside the reconcile (`step:N`: after the Nth step) this kind's action reaches."""
    late: tuple[str, ...] = ()
    """Points after the reconcile (`before-checks`, `before-succeeded`): run where cheap."""
    revert_points: tuple[str, ...] = ()
    known_bugs: dict[str, str] = field(default_factory=dict)
    """Points whose rollback fails today, with why (strict xfail: fixed, it must be removed)."""
    needs: tuple[str, ...] = field(default=())
    """Real parts the scenario needs (`vllm`)."""

    @property
    def points(self) -> tuple[str, ...]:
        return CHEAP + self.mid + self.late


def new_lab(root: Path) -> Path:
    lab = root / "lab"
    llmops(lab, "init", create=False)
    return lab


def local_host(root: Path, lab: Path, **extra: str) -> None:
    args = ["host", "add", "local", "--local", "--python", PY, "--workdir", str(root / "work")]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    llmops(lab, *args)


# -- host: a local host add (the probe is its one step) -------------------------------------
def host_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    broken = root / "broken-python"  # the failing action: its probe step fails, reverted
    broken.write_text("#!/bin/sh\necho 'no python here' >&2\nexit 3\n")
    broken.chmod(0o755)
    return Action(
        new_lab(root),
        ["host", "add", "h1", "--local", "--python", PY, "--workdir", str(root / "work-h1")],
        failing=["host", "add", "h2", "--local", "--python", str(broken), "--workdir",
                 str(root / "work-h2")],
    )


# -- server: the tiny model, eager; step 2 is its start (vLLM launched, not yet ready) --------
def free_port() -> int:
    """A port nobody listens on now (the shared box runs other engineers' servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    lab = new_lab(root)
    local_host(root, lab)

    def up(name: str, *extra: str) -> list[str]:
        return ["server", "up", name, "--host", "local", "--model", str(tiny_model_dir()),
                "--port", str(free_port()), "--dtype", "float32", "--max-model-len", "256",
                "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE,
                *extra]

    # the failing one: vLLM is started, but not ready within 10 s (a CPU start takes 25 s or
    # more), so the revert has a live process to stop when it is killed
    return Action(lab, up("f1"), failing=up("f2", "--start-timeout-s", "10"))


# -- run: a few-step tiny training; step 5 is the trainer's start ----------------------------
def run_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    lab = new_lab(root)
    data = root / "data"
    local_host(root, lab, data_dirs=f"{data / 'training'},{data / 'validation'}")
    rows = write_rows(data / "training" / "rows.jsonl", text_rows(24))
    return Action(lab, ["run", "start", "r1", "--host", "local", "--base", str(tiny_model_dir()),
            "--dataset", str(rows), "--max-steps", "4", "--save-steps", "2", "--eval-steps",
            "2", "--logging-steps", "1", "--eval-split", "0.1", "--batch-size", "4",
            "--max-seq-len", "32", "--seed", "1"])


# -- adapter: a real peft adapter folder deployed to a LoRA server started once for the scenario;
# step 1 is its copy into the host's content-addressed store, step 2 its hot-load ----------------
NOOP_ADAPTER = """
import sys
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
get_peft_model(model, config).save_pretrained(sys.argv[2])
"""


def adapter_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    lab = new_lab(root)
    local_host(root, lab)
    folder = root / "adapter-a"
    maker = subprocess.Popen([PY, "-c", NOOP_ADAPTER, str(tiny_model_dir()), str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    llmops(lab, "server", "up", "lora", "--host", "local", "--model", str(tiny_model_dir()),
           "--dtype", "float32", "--max-model-len", "256", "--port", str(free_port()),
           "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", "--enable-lora",
           "--runtime-lora", "--max-lora-rank", "8", *LOOSE_TARGETS, *INLINE, timeout=900)
    request.config.add_cleanup(lambda: llmops(lab, "server", "down", "lora", check=None,
                                              timeout=300))
    _, problems = maker.communicate(timeout=600)
    assert maker.returncode == 0, problems[-2000:]
    return Action(lab, ["adapter", "deploy", "fa", "--path", str(folder), "--server", "lora"])


# -- index: the session's embedding server (tests/test_index_support.py) and a Weaviate stand-in
# on loopback; step 1 is the collection's creation (no source: nothing to ingest) -------------
def index_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    from test_index_support import embedding_setup, start_standin

    shared = embedding_setup(request.getfixturevalue("tmp_path_factory"), request.config)
    standin = start_standin(root / "backups")
    request.config.add_cleanup(standin.stop)
    return Action(shared.lab, ["index", "create", "fx", "--host", "local", "--collection", "Fx",
                               "--embed-server", "emb", "--http-port", str(standin.http_port),
                               "--grpc-port", str(standin.grpc_port)])


# -- env: a venv of the tiny test wheels on host local (index mode, a file:// index); step 1 is
# its build (or its restore from the manifest an earlier point recorded), step 2 the switch ---
def env_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    from test_env_wheels import PKG, make_wheels

    lab = new_lab(root)
    local_host(root, lab)
    index = (make_wheels(root / "wheels") / "simple").as_uri()

    def add(name: str, version: str) -> list[str]:
        return ["env", "add", name, "--host", "local", "--packages", f"{PKG}=={version}",
                "--index-url", index, "--no-keep-previous"]

    return Action(lab, add("fe", "1.0"), failing=add("ff", "3.0"))  # 3.0 does not exist


# -- gateway: a LiteLLM gateway in front of a server the lab names but never starts (no point
# reaches a request); its venv is the tests' cache (tests/test_gateway_live.py), built once per
# machine. Step 1 writes its config (on a machine without that cache: installs the venv) -----
def gateway_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    import os

    from llmops.ops.kinds.gateway.spec import LITELLM_VERSION
    from llmops.ops.kinds.server import ServerSpec
    from llmops.rollback.lab import Lab

    lab = new_lab(root)
    local_host(root, lab)
    opened = Lab(lab, create=False)
    try:
        server = ServerSpec(name="fs", host="local", model="/models/none", port=free_port())
        opened.commit("hand edit: server fs (never started)",
                      [opened.write_spec("server", "fs", server)])
    finally:
        opened.close()
    cache = Path(os.environ.get("LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests"))
    key_env = "LLMOPS_FAULT_GATEWAY_KEY"
    return Action(lab, ["gateway", "up", "fg", "--host", "local", "--port", str(free_port()),
                        "--model", "chat=fs", "--venv", str(cache / f"litellm-{LITELLM_VERSION}"),
                        "--master-key-env", key_env], env={key_env: "sk-fault-test-key-value"})


# -- cluster: a Ray cluster of one on host local (loopback); only the cheap points: a Ray start
# per point would be ~20 s each (the namespace tests start the real two-node one) ------------
def cluster_setup(root: Path, request: pytest.FixtureRequest) -> Action:
    lab = new_lab(root)
    local_host(root, lab)
    return Action(lab, ["cluster", "up", "fc", "--head", "local", "--interface", "lo",
                        "--port", str(free_port()), "--num-cpus", "1", "--object-store-mb",
                        "80", "--temp-dir", f"/tmp/ray-fc-{root.name[-12:]}"])


SCENARIOS: dict[str, Scenario] = {
    "host": Scenario(
        "host", host_setup, mid=("after-write", "after-committed", "step:1"),
        late=("before-checks", "before-succeeded"),
        revert_points=("revert-after-commit", "before-failed"),
    ),
    "server": Scenario("server", server_setup, mid=("step:2",), needs=("vllm",),
                       revert_points=("revert-after-commit",)),
    "run": Scenario("run", run_setup, mid=("step:5",)),
    "adapter": Scenario("adapter", adapter_setup, mid=("step:2",), needs=("vllm",)),
    "index": Scenario("index", index_setup, mid=("step:1",), needs=("vllm",)),
    "env": Scenario("env", env_setup, mid=("step:1",), revert_points=("revert-after-commit",)),
    "gateway": Scenario("gateway", gateway_setup, mid=("step:1",)),
    "cluster": Scenario("cluster", cluster_setup, mid=()),
}
