"""SSH dropping mid-action, for each kind whose actions reach a host: a real vLLM server
through the real CLI (`server up`), and a real LoRA run through the engine (`run` start).

The revert cannot reach the host, so what the action started stays visible (`server list`,
`host show`, `plan`) until `plan` reaches the host again and finishes the revert; a rollback
of the action then has nothing left to do and says so. Afterwards no process is orphaned:
every pid file under the host's run folder names a dead process with an empty session.
tests/test_engine_revert.py proves the same engine properties with a cheap detached process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from droptools import PENDING, words
from finetune_fixtures import text_rows, tiny_model_dir, write_rows
from labtools import LLMOPS, llmops, llmops_json
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS
from sshhosts import SshHost, SshHostFactory
from test_engine_revert import detached
from test_procs import alive, wait_for
from test_server_vllm import tiny_model

from llmops.ops.kinds.run import RunSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.records import ActionRecord

pytestmark = [pytest.mark.vllm, pytest.mark.ssh, pytest.mark.timeout(600)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

__all__ = ["tiny_model"]  # the fixture, used by name
PORT = 18411


def test_ssh_drop_mid_server_up(
    ssh_host_factory: SshHostFactory, tiny_model: Path, tmp_path: Path
) -> None:
    g = ssh_host_factory("g")
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "g", "--address", g.address, "--user", g.user, "--key",
           str(g.key_path), "--python", g.spec().python, "--workdir", str(g.workdir),
           "--trust", g.host_pub_fingerprint)
    record = g.workdir / "run" / "s9" / "proc.json"
    up = subprocess.Popen(
        [*LLMOPS, "--lab", str(lab), "server", "up", "s9", "--host", "g", "--model",
         str(tiny_model), "--dtype", "float32", "--max-model-len", "256", "--port", str(PORT),
         "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: record.exists() and detached(g, json.loads(record.read_text())["pid"]),
                 120)
        time.sleep(2)  # into wait-ready: vLLM loads while llmops polls it over SSH
        g.kill()  # sshd and its per-connection children: the connection drops
        out, err = up.communicate(timeout=180)
        pid = json.loads(record.read_text())["pid"]
        assert up.returncode == 1, out + err
        assert "the revert failed too" in words(out) and "cannot reach g" in words(out), out
        assert alive(pid)  # vLLM still loads inside the namespace

        action = llmops_json(lab, "history")[-1]
        assert action["status"] == "failed" and action["summary"].startswith("server s9")
        listed = llmops_json(lab, "server", "list")
        assert [(r["name"], r["state"]) for r in listed] == [("s9", PENDING)]
        rows = {r["resource"]: r for r in llmops_json(lab, "plan")}
        assert rows["server/s9"]["state"] == PENDING  # g is down: shown, not finished

        g.start()
        shown = llmops_json(lab, "host", "show", "g")["processes"]
        assert {p["name"]: p["claimed_by"] for p in shown} == {"s9": f"server/s9 ({PENDING})"}
        plan = words(llmops(lab, "plan", timeout=180).stdout)
        assert f"server/s9 revert finished — action {action['id'] + 1}" in plan, plan
        wait_for(lambda: not alive(pid), 30)
        assert orphans(g) == {}  # vLLM's engine core and workers went with it
        assert llmops_json(lab, "server", "list") == []
        assert "server/s9" not in {r["resource"] for r in llmops_json(lab, "plan")}
        finished = llmops_json(lab, "history", str(action["id"] + 1))
        assert [s["verb"] for s in finished["steps"]] == ["stop", "forget"]
        assert finished["checks"] and all(c["ok"] for c in finished["checks"])

        refused = llmops(lab, "rollback", str(action["id"]), check=2)
        assert "nothing to roll back: server s9 is absent" in words(refused.stderr)
        assert "rolling back" not in refused.stderr  # refused before any preview is shown
    finally:
        if up.poll() is None:
            up.kill()
        if g.sshd_pid is None:
            g.start()
        if record.exists() and alive(json.loads(record.read_text())["pid"]):
            os.killpg(json.loads(record.read_text())["sid"], signal.SIGKILL)


def orphans(host: SshHost) -> dict[str, list[int]]:
    """Every process a pid file under the host's run folder names that still runs, with the
    rest of its session (procctl starts each in its own): what nothing would stop."""
    found: dict[str, list[int]] = {}
    for record in (host.workdir / "run").glob("*/proc.json"):
        sid = int(json.loads(record.read_text())["sid"])
        members = [int(p.name) for p in Path("/proc").iterdir()
                   if p.name.isdigit() and alive(int(p.name)) and session_of(int(p.name)) == sid]
        if members:
            found[record.parent.name] = members
    return found


def session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def test_ssh_drop_mid_run_start(ssh_host_factory: SshHostFactory, tmp_path: Path) -> None:
    """A LoRA run on host `rd`: sshd dies (with its connections) while the engine waits for
    the trainer's first log. The action fails naming the host, the trainer keeps training in
    the namespace, `plan` finishes the revert once sshd is back, and nothing is orphaned."""
    g = ssh_host_factory("rd")
    home = Path(os.path.expanduser("~"))  # the namespace host logs in as this user
    top = f"llmops-drop-{uuid.uuid4().hex[:8]}"
    write_rows(home / top / "training" / "rows.jsonl", text_rows(40))
    lab = tmp_path / "lab"
    engine = Engine(Lab(lab), lock_wait=2.0)
    spec = RunSpec(name="r9", host=g.name, base=str(tiny_model_dir()),
                   dataset=f"~/{top}/training/rows.jsonl", max_steps=100000, save_steps=50,
                   logging_steps=5, batch_size=4, max_seq_len=64, lr=0.01, seed=1)
    trainer = g.workdir / "run" / spec.proc_name() / "proc.json"
    done: dict[str, ActionRecord] = {}
    try:
        added = engine.act([Change("host", g.name, g.spec(data_dirs=[f"~/{top}/training"]))],
                           "add", trust={g.name: g.host_pub_fingerprint})
        assert added.status == "succeeded", added.error
        thread = threading.Thread(target=lambda: done.update(
            record=engine.act([Change("run", "r9", spec)], "run r9 up")))
        thread.start()
        wait_for(lambda: trainer.exists()
                 and detached(g, json.loads(trainer.read_text())["pid"]), 180)
        g.kill()  # mid wait-progress: the trainer imports torch while llmops polls it
        thread.join(180)
        record = done["record"]
        pid = json.loads(trainer.read_text())["pid"]
        assert record.status == "failed", record
        said = words(record.error or "")  # the host named; a host-side script never quoted
        assert re.search(rf"(lost the connection to|cannot reach) {g.name}\b", said), said
        assert '"""' not in said and "import " not in said, said
        assert f"cannot reach {g.name}" in words(record.revert_error or ""), record.revert_error
        assert [s.verb for s in record.steps if s.phase != "revert"][-1] == "wait-progress"
        assert alive(pid)  # training on inside the namespace, out of llmops's reach
        engine.close()
        engine.lab.close()

        g.start()
        shown = llmops_json(lab, "host", "show", g.name)["processes"]
        assert {p["name"]: p["claimed_by"] for p in shown}[spec.proc_name()] == \
            f"run/r9 ({PENDING})"
        plan = words(llmops(lab, "plan", timeout=180).stdout)
        assert f"run/r9 revert finished — action {record.id + 1}" in plan, plan
        finished = llmops_json(lab, "history", str(record.id + 1))
        assert "stop" in [s["verb"] for s in finished["steps"]], finished["steps"]
        assert finished["checks"] and all(c["ok"] for c in finished["checks"]), finished
        assert not alive(pid) and orphans(g) == {}
        assert "run/r9" not in {r["resource"] for r in llmops_json(lab, "plan")}
    finally:
        if g.sshd_pid is None:
            g.start()
        for record_path in (g.workdir / "run").glob("*/proc.json"):
            try:
                os.killpg(json.loads(record_path.read_text())["sid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(home / top, ignore_errors=True)
