"""SSH dropping mid-action for the kinds test_server_drop.py does not cover: an index whose
Weaviate llmops runs as a binary on the host (through the real CLI), and an adapter copied to
a LoRA-enabled vLLM server on the host (through the engine, the drop made in the middle of the
copy into the host's store).

Each time sshd dies with every connection it serves (the host went away): the action fails
naming the host, what it started stays visible, `plan` finishes the revert once sshd is back,
and no process is orphaned on the host (every pid file under its run folder names a dead
process, or one the lab still claims).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from droptools import PENDING, act_dropping, finish_revert, words
from finetune_fixtures import tiny_model_dir
from labtools import LLMOPS, llmops, llmops_json
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS
from sshhosts import SshHost, SshHostFactory
from test_engine_revert import detached
from test_procs import alive, wait_for
from test_server_drop import orphans

from llmops.ops.kinds.adapter import AdapterSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.pending import PendingReverts

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(600)]

TESTS = Path(__file__).parent
PY = sys.executable

GATED = """#!/bin/sh
# Weaviate's command line and environment handed to the stand-in, once {gate} exists: a
# Weaviate that takes its time to start, so the drop lands in llmops's wait-ready.
while [ ! -e {gate} ]; do sleep 0.1; done
port=8080
while [ $# -gt 0 ]; do
  case "$1" in --port) port=$2; shift;; esac
  shift
done
cd {tests} || exit 1
exec {python} -m weaviate_standin --http-port "$port" --grpc-port "$GRPC_PORT" \\
  --backup-dir "$BACKUP_FILESYSTEM_PATH" --data-dir "$PERSISTENCE_DATA_PATH"
"""


def kill_sessions(host: SshHost) -> None:
    """Whatever a pid file under the host's run folder names, with its session (cleanup)."""
    for record in (host.workdir / "run").glob("*/proc.json"):
        try:
            os.killpg(json.loads(record.read_text())["sid"], signal.SIGKILL)
        except (ProcessLookupError, ValueError, KeyError):
            pass


def add_host(lab: Path, host: SshHost) -> None:
    llmops(lab, "host", "add", host.name, "--address", host.address, "--user", host.user,
           "--key", str(host.key_path), "--python", host.spec().python, "--workdir",
           str(host.workdir), "--trust", host.host_pub_fingerprint)


@pytest.mark.vllm
def test_ssh_drop_mid_index_create(ssh_host_factory: SshHostFactory, tmp_path: Path,
                                   tmp_path_factory: pytest.TempPathFactory,
                                   pytestconfig: pytest.Config) -> None:
    """`index create` with launch = binary on host `wd` (vectors from the session's embedding
    server, test_index_support.py): sshd dies while llmops waits for Weaviate to be ready. The
    CLI exits 1 naming the host, Weaviate comes up inside the namespace anyway (shown as a
    pending revert), `plan` stops it once sshd is back."""
    from test_index_support import embedding_setup

    lab = embedding_setup(tmp_path_factory, pytestconfig).lab
    g = ssh_host_factory("wd")
    add_host(lab, g)
    gate = tmp_path / "gate"
    binary = tmp_path / "weaviate"
    binary.write_text(GATED.format(gate=gate, tests=TESTS, python=PY))
    binary.chmod(0o755)
    record = g.workdir / "run" / "index.x1" / "proc.json"
    create = subprocess.Popen(
        [*LLMOPS, "--lab", str(lab), "index", "create", "x1", "--host", g.name, "--collection",
         "X1", "--launch", "binary", "--binary", str(binary), "--data-dir",
         str(tmp_path / "wv-data"), "--backup-dir", str(tmp_path / "wv-backups"),
         "--embed-server", "emb", "--http-port", "18431", "--grpc-port",
         "18432"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: create.poll() is not None or (
            record.exists() and detached(g, json.loads(record.read_text())["pid"])), 60)
        assert create.poll() is None, create.communicate()
        time.sleep(1)  # into wait-ready: llmops polls the process and /v1/meta over SSH
        g.kill()
        gate.touch()  # Weaviate comes up in the namespace, out of llmops's reach
        out, err = create.communicate(timeout=120)
        pid = json.loads(record.read_text())["pid"]
        assert create.returncode == 1, out + err
        said = words(out)
        assert re.search(rf"(lost the connection to|cannot reach) {g.name}\b", said), said
        assert "the revert failed too" in said, said
        assert alive(pid)

        action = llmops_json(lab, "history")[-1]
        assert action["status"] == "failed" and "x1" in action["summary"], action
        failed = llmops_json(lab, "history", str(action["id"]))
        applied = [s["verb"] for s in failed["steps"] if s["phase"] == "apply"]
        assert applied == ["start", "wait-ready"], failed["steps"]
        rows = {r["resource"]: r for r in llmops_json(lab, "plan")}
        assert rows["index/x1"]["state"] == PENDING  # the host is down: shown, not finished

        g.start()
        shown = llmops_json(lab, "host", "show", g.name)["processes"]
        assert {p["name"]: p["claimed_by"] for p in shown} == \
            {"index.x1": f"index/x1 ({PENDING})"}
        plan = words(llmops(lab, "plan", timeout=120).stdout)
        assert f"index/x1 revert finished — action {action['id'] + 1}" in plan, plan
        wait_for(lambda: not alive(pid), 30)
        assert orphans(g) == {}
        assert "index/x1" not in {r["resource"] for r in llmops_json(lab, "plan")}
        finished = llmops_json(lab, "history", str(action["id"] + 1))
        assert finished["status"] == "succeeded", finished
        assert "stop" in [s["verb"] for s in finished["steps"]], finished["steps"]
        assert finished["checks"] and all(c["ok"] for c in finished["checks"]), finished
        assert "x1" not in {i["name"] for i in llmops_json(lab, "index", "list")}

        refused = llmops(lab, "rollback", str(action["id"]), check=2)
        assert "nothing to roll back" in words(refused.stderr), refused.stderr
    finally:
        if create.poll() is None:
            create.kill()
        gate.touch()
        if g.sshd_pid is None:
            g.start()
        kill_sessions(g)


ADAPTER = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                    task_type="CAUSAL_LM")
model = get_peft_model(model, config)
ids = tok(["Blue and green servers take turns being the live one."] * 8,
          return_tensors="pt").input_ids
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
for _ in range(20):
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad()
model.save_pretrained(sys.argv[2])
"""
SERVER_PORT = 18421


@pytest.mark.vllm
def test_ssh_drop_mid_adapter_deploy(ssh_host_factory: SshHostFactory, tmp_path: Path) -> None:
    """An adapter on this machine (`local`) deployed to server `lora` on host `ad`: sshd dies
    after the first file reached the host's store, mid-copy. The action fails naming the host
    (its revert cannot reach it either); while `ad` is down nothing is tried (the revert is
    finished on the server's host, not the adapter's source host); `plan` finishes it once
    sshd is back; nothing is left running but the server the lab still holds, and the adapter
    is not served; a new deploy of the same adapter then succeeds over the half-copied
    folder."""
    require_vllm()
    g = ssh_host_factory("ad")
    lab = tmp_path / "lab"
    folder = tmp_path / "adapter"
    maker = subprocess.Popen([PY, "-c", ADAPTER, str(tiny_model_dir()), str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(tmp_path / "local-work"))
    add_host(lab, g)
    try:
        llmops(lab, "server", "up", "lora", "--host", g.name, "--model", str(tiny_model_dir()),
               "--dtype", "float32", "--max-model-len", "256", "--port", str(SERVER_PORT),
               "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", "--enable-lora",
               "--runtime-lora", "--max-lora-rank", "8", *LOOSE_TARGETS, *INLINE, timeout=600)
        _, problems = maker.communicate(timeout=600)
        assert maker.returncode == 0, problems[-2000:]
        server_pid = json.loads((g.workdir / "run" / "lora" / "proc.json").read_text())["pid"]
    finally:
        if maker.poll() is None:
            maker.kill()
    engine = Engine(Lab(lab), lock_wait=2.0)
    try:
        sha = engine.adapter_sha(None, str(folder), "local")
        spec = AdapterSpec(name="chat", path=str(folder), host="local", server="lora",
                           sha256=sha)
        copied: list[str] = []

        def drop_after_first_file(_action: int, ref: str, line: str) -> None:
            if ref == "adapter/chat" and line.startswith("copied ") and not copied:
                copied.append(line)
                g.kill()  # mid-copy: the next file's put finds no host

        engine.progress_listeners.append(drop_after_first_file)
        record = engine.act([Change("adapter", "chat", spec)], "adapter chat deploy")
        assert copied, "the copy never reported a file"
        assert record.status == "failed", record
        said = words(record.error or "")
        assert re.search(rf"(lost the connection to|cannot reach) {g.name}\b", said), said
        assert f"cannot reach {g.name}" in words(record.revert_error or ""), record.revert_error
        assert [s.verb for s in record.steps if s.phase != "revert"] == ["fetch"]
        incoming = list((g.workdir / "adapters").glob(".incoming-*"))
        assert incoming, "the half-copied folder is what the action left on the host"
        assert alive(server_pid)
        assert [p.ref for p in engine.pending.all()] == [("adapter", "chat")]
    finally:
        engine.close()
        engine.lab.close()
    try:
        rows = {r["resource"]: r for r in llmops_json(lab, "plan")}  # the host is still down
        assert rows["adapter/chat"]["state"] == PENDING, rows
        assert rows["server/lora"]["state"] == "unreachable", rows
        # The revert is finished on the server's host (`ad`, down), not on the adapter's
        # source host (`local`, which answers): `plan` tries nothing, it stays pending.
        llmops_json(lab, "plan")
        tried = [a for a in llmops_json(lab, "history") if a["id"] > record.id]
        assert tried == [], tried
        again = Lab(lab)
        try:
            left = PendingReverts(again.journal, desired=again.read_spec).all()
        finally:
            again.close()
        assert [(p.ref, p.host) for p in left] == [(("adapter", "chat"), g.name)]
        g.start()
        plan = words(llmops(lab, "plan", timeout=120).stdout)
        done = re.search(r"adapter/chat revert finished — action (\d+)", plan)
        assert done, plan
        finished = llmops_json(lab, "history", done.group(1))
        assert finished["status"] == "succeeded", finished
        assert "adapter/chat" not in {r["resource"] for r in llmops_json(lab, "plan")}
        assert set(orphans(g)) == {"lora"}  # the server the lab holds, nothing else
        assert alive(server_pid)
        served = llmops_json(lab, "adapter", "list")
        assert served == [], served

        again = json.loads(llmops(lab, "adapter", "deploy", "chat", "--path", str(folder),
                                  "--host", "local", "--server", "lora", "--json",
                                  timeout=300).stdout)
        action = again["action"]
        assert again["ok"] and action["status"] == "succeeded", action
        assert action["checks"] and all(c["ok"] for c in action["checks"]), action["checks"]
    finally:
        if g.sshd_pid is None:
            g.start()
        llmops(lab, "adapter", "undeploy", "chat", check=None, timeout=300)
        llmops(lab, "server", "down", "lora", check=None, timeout=300)
        kill_sessions(g)


def test_ssh_drop_mid_env_build(ssh_host_factory: SshHostFactory, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An env upgrade (wheelhouse mode, no index on the host) whose sshd dies right after the
    new set's build started there, detached. The action fails naming the host and its revert
    stays pending; the venv path never moved (the old set's packages are what it holds, read
    with pip itself); once sshd is back `plan` finishes the revert (a build still running is
    stopped), nothing is left running, and the same upgrade then succeeds."""
    from test_env_kind import FREEZE1, FREEZE2, PIN1, PIN2, freeze_of
    from test_env_wheels import make_wheels

    from llmops.ops.kinds.env import EnvSpec

    monkeypatch.setenv("LLMOPS_WHEEL_CACHE", str(tmp_path / "cache"))
    g = ssh_host_factory("eb")
    lab = tmp_path / "lab"
    wheels = make_wheels(tmp_path / "wheels")
    add_host(lab, g)
    llmops(lab, "env", "add", "e1", "--host", g.name, "--mode", "wheelhouse", "--no-index",
           "--find-links", str(wheels), "--packages", PIN1, timeout=600)
    venv = g.workdir / "envs" / "e1" / "venv"
    old = os.readlink(venv)
    hand = Lab(lab)
    try:
        now = hand.read_spec("env", "e1")
    finally:
        hand.close()
    assert isinstance(now, EnvSpec)
    spec = EnvSpec.model_validate({**now.model_dump(), "packages": [PIN2]})
    try:
        record = act_dropping(lab, Change("env", "e1", spec), "env e1 up", g,
                              lambda line: line.startswith("build of venv"))
        assert f"cannot reach {g.name}" in words(record.revert_error or ""), record.revert_error
        assert os.readlink(venv) == old and freeze_of(venv) == FREEZE1  # nothing half-switched
        finished = finish_revert(lab, "env/e1", g)
        assert {s["verb"] for s in finished["steps"]} <= {"stop"}, finished["steps"]
        assert os.readlink(venv) == old and freeze_of(venv) == FREEZE1
        assert orphans(g) == {}, orphans(g)

        again = json.loads(llmops(lab, "env", "up", "e1", "--packages", PIN2, "--json",
                                  timeout=600).stdout)
        assert again["ok"] and again["action"]["status"] == "succeeded", again["action"]
        assert freeze_of(venv) == FREEZE2
    finally:
        if g.sshd_pid is None:
            g.start()
        kill_sessions(g)


def litellm_venv() -> Path:
    """The tests' LiteLLM venv (test_gateway_live builds it first in a whole run), built here
    with the gateway kind's own install script when missing: a namespace host reaches no
    package index, so its gateway must find the venv ready on the shared filesystem."""
    from test_gateway_live import VENV

    from llmops.ops.kinds.gateway.apply import INSTALL_SCRIPT, MARKER
    from llmops.ops.kinds.gateway.spec import LITELLM_VERSION

    if not (VENV / MARKER).exists():
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, "-c", INSTALL_SCRIPT, str(VENV), LITELLM_VERSION], check=True,
                       timeout=1800, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return VENV


def test_ssh_drop_mid_gateway_start(ssh_host_factory: SshHostFactory, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway on host `gd` (LiteLLM under gunicorn, routing to a server of the lab that is
    not running: the proxy starts without its backends) whose sshd dies right after gunicorn
    was started, detached. The action fails naming the host, its revert stays pending, the
    proxy keeps running in the namespace; once sshd is back `plan` finishes the revert (the
    proxy stopped, its record gone) and nothing is left running."""
    from llmops.ops.kinds.gateway.spec import GatewaySpec

    key_env = "LLMOPS_TEST_DROP_GATEWAY_KEY"
    monkeypatch.setenv(key_env, "sk-drop-test-key")
    venv = litellm_venv()
    g = ssh_host_factory("gd")
    lab = tmp_path / "lab"
    add_host(lab, g)
    (lab / "servers").mkdir(exist_ok=True)
    (lab / "servers" / "plain.toml").write_text(
        f'host = "{g.name}"\nmodel = "/models/t"\nport = 18671\n')
    hand = Lab(lab)
    try:
        hand.commit("hand edit: server plain (never started)", ["servers/plain.toml"])
    finally:
        hand.close()
    spec = GatewaySpec.model_validate({
        "name": "gw", "host": g.name, "port": 18681, "models": {"chat": ["plain"]},
        "master_key_env": key_env, "venv": str(venv)})
    try:
        act_dropping(lab, Change("gateway", "gw", spec), "gateway gw up", g,
                     lambda line: "started (pid" in line)
        assert "gateway.gw" in orphans(g), orphans(g)  # the proxy runs on while sshd is down
        finish_revert(lab, "gateway/gw", g)
        assert orphans(g) == {}, orphans(g)
    finally:
        if g.sshd_pid is None:
            g.start()
        kill_sessions(g)
