"""A real vLLM server whose SSH connection drops mid-`server up`, through the real CLI.

The revert cannot reach the host, so what the action started stays visible (`server list`,
`host show`, `plan`) until `plan` reaches the host again and finishes the revert; a rollback
of the action then has nothing left to do and says so. tests/test_engine_revert.py proves the
same engine properties with a cheap detached process, in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from labtools import LLMOPS, llmops, llmops_json
from realparts import require_vllm
from sshhosts import SshHostFactory
from test_engine_revert import detached
from test_procs import alive, wait_for
from test_server_vllm import tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.ssh, pytest.mark.timeout(600)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

__all__ = ["tiny_model"]  # the fixture, used by name
PORT = 18411
PENDING = "unknown — revert pending"


def words(text: str) -> str:
    return " ".join(text.split())


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
         "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true"],
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
