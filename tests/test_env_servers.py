"""A server on an env, end to end (issue 14 item 3): real CPU vLLM, real envs built by pip on
host `local` (index mode, a file:// index), the real CLI. The env holds the tiny
`llmops-test-vllm-path` wheel (tests/envwheels.py: a `.pth` that lends vLLM processes this
run's vLLM install; 3.0 also ships a `vllm` that refuses to import), so each venv is a real,
separate venv built by the env kind, and vLLM starts from it.

One lab, one env, ONE blue-green server (grace 30 min, so an env rollback is a colour switch):
- the server starts from the env's set's python (the process's argv, read from /proc);
- `env up` 2.0: the server follows in the same action (new colour started on the new set's
  venv, switched live, checked), the old colour stays on the old set;
- `rollback` of that action: the env's symlink switches back and so does the server, no
  start;
- `env up` 3.0 (installs fine, cannot serve): the new colour fails to start, the action fails
  and reverts: the env back on 1.0, the server still answering from the 1.0 venv;
- refusals: a missing env, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from envwheels import BROKEN_WORDS, PATH_PKG, make_path_wheels
from labtools import LLMOPS, git_log, llmops
from sharedserver import LOOSE_TARGETS, SLOW, make_tiny_model

from llmops.ops.kinds.env.spec import EnvSpec

pytestmark = pytest.mark.timeout(1200)  # three vLLM starts in the walk: 600 s (the suite's
# default) was not enough at load 15-22 (its actions alone took 565 s there)

API = "vllm.entrypoints.openai.api_server"
PORT, BLUE, GREEN = 18961, 18962, 18963


@dataclass
class EnvServer:
    lab: Path
    work: Path
    index: str
    model: Path

    def run(self, *args: str, check: int | None = 0) -> dict[str, Any]:
        done = llmops(self.lab, *args, "--json", check=check, timeout=SLOW)
        return dict(json.loads(done.stdout))

    @property
    def venv(self) -> Path:
        return self.work / "envs" / "e" / "venv"

    def current_set(self) -> str:
        return os.readlink(self.venv).rsplit("/", 1)[-1]

    def set_python(self, target: str) -> str:
        return f"{self.work}/envs/e/venvs/{target}/bin/python"


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("env-servers")
    found = EnvServer(root / "lab", root / "work",
                      make_path_wheels(root / "wheels").as_uri(), make_tiny_model(root / "tiny"))
    llmops(found.lab, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(found.work))
    yield found
    llmops(found.lab, "server", "down", "s", check=None, timeout=SLOW)


def vllm_python(port: int) -> str | None:
    """argv[0] of the vLLM API server started with `--port port`, read from /proc (not
    through llmops)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if API in argv and f"--port\0{port}" in "\0".join(argv):
            return argv[0]
    return None


def answers(es: EnvServer) -> bool:
    reply = httpx.post(f"http://127.0.0.1:{PORT}/v1/completions", timeout=60,
                       json={"model": str(es.model), "prompt": "Hello", "max_tokens": 4})
    return reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 4


def verbs(answer: dict[str, Any], ref: str, phase: str = "apply") -> list[str]:
    return [s["verb"] for s in answer["action"]["steps"]
            if s["ref"] == ref and s.get("phase", "apply") == phase]


def checks_ok(answer: dict[str, Any], phase: str = "apply") -> None:
    checks = [c for c in answer["action"]["checks"] if c.get("phase", "apply") == phase]
    assert {c["ref"] for c in checks} == {"env/e", "server/s"}
    assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]


def test_a_missing_env_is_refused(es: EnvServer) -> None:
    commits = git_log(es.lab)
    done = llmops(es.lab, "server", "up", "s", "--host", "local", "--model", str(es.model),
                  "--env", "nope", check=2)
    assert "env: there is no env named nope" in done.stderr + done.stdout
    assert git_log(es.lab) == commits


def test_env_upgrade_rollback_and_a_breaking_upgrade(es: EnvServer) -> None:
    added = es.run("env", "add", "e", "--host", "local", "--index-url", es.index,
                   "--packages", f"{PATH_PKG}==1.0")
    assert added["ok"], added
    set1 = es.current_set()
    up = es.run("server", "up", "s", "--host", "local", "--model", str(es.model), "--env", "e",
                "--strategy", "blue-green", "--grace-minutes", "30", "--port", str(PORT),
                "--colour-ports", f"{BLUE},{GREEN}", "--dtype", "float32", "--max-model-len",
                "256", "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS)
    assert up["ok"], up["action"].get("error")
    assert vllm_python(BLUE) == es.set_python(set1) and answers(es)

    # an upgrade (text mode: what follows is said before and after): the server follows in
    # the same action, on the new set's venv
    said = llmops(es.lab, "env", "up", "e", "--packages", f"{PATH_PKG}==2.0", timeout=SLOW)
    assert "server s follows" in said.stdout and "followed: server/s" in said.stdout
    newest = json.loads(llmops(es.lab, "history", "--limit", "1", "--json").stdout)[0]["id"]
    upgraded = {"action": es.run("history", str(newest))}
    assert verbs(upgraded, "env/e") == ["snapshot", "build", "switch"]
    assert "start" in verbs(upgraded, "server/s") and "switch" in verbs(upgraded, "server/s")
    checks_ok(upgraded)
    set2 = es.current_set()
    assert set2 != set1
    assert vllm_python(GREEN) == es.set_python(set2) and answers(es)
    assert vllm_python(BLUE) == es.set_python(set1)  # the kept colour stays on its set

    # its rollback: the env switches back, the server switches back to blue (no start)
    back = es.run("rollback", str(upgraded["action"]["id"]))
    assert back["ok"], back["action"].get("error")
    assert verbs(back, "env/e") == ["snapshot", "switch"]
    assert verbs(back, "server/s") == ["switch"]
    checks_ok(back)
    assert es.current_set() == set1 and answers(es)

    # 3.0 installs fine but cannot serve: the action fails, the env and the server revert
    commits = git_log(es.lab)
    broken = es.run("env", "up", "e", "--packages", f"{PATH_PKG}==3.0", check=1)
    action = broken["action"]
    assert action["status"] == "failed, reverted" and broken["followers"] == ["server/s"]
    assert BROKEN_WORDS in action["error"], action["error"]
    assert "build" in verbs(broken, "env/e") and "start" in verbs(broken, "server/s")
    assert verbs(broken, "env/e", "revert") == ["snapshot", "switch"]
    checks_ok(broken, "revert")
    assert es.current_set() == set1 and vllm_python(BLUE) == es.set_python(set1)
    assert answers(es)
    assert len(git_log(es.lab)) == len(commits) + 2  # the action and its revert
    shown = es.run("env", "show", "e")
    assert shown["state"] == "ready" and shown["freeze"] == [f"{PATH_PKG}==1.0"]
    print("env-servers seconds:", {name: a["action"]["seconds"] for name, a in (
        ("server up", up), ("env up 2.0", upgraded), ("rollback", back),
        ("env up 3.0 failed+reverted", broken))})


def test_env_up_reconciling_takes_the_server_along(es: EnvServer) -> None:
    """`env up e` killed (SIGKILL at the engine's fault point) right after the env's switch,
    before the server followed: the env is on the new set, the server still on the old one.
    `env up e` with nothing asked (the Envs view's R is the same call) reconciles the host as
    one journalled operation that takes the server along: restarted on the new set's venv
    (a new colour, switched live) and checked with the env, no second build; a second
    reconcile starts nothing. One vLLM start (441.9 s in all at load 15-22)."""
    set2 = EnvSpec(name="e", host="local", packages=[f"{PATH_PKG}==2.0"]).set_sha()
    kept = (es.work / "envs" / "e" / "venvs" / set2 / ".llmops-complete").exists()
    env_steps = 2 if kept else 3  # snapshot, [build,] switch: die after the switch
    killed = subprocess.run(  # its own process (not the tests' CLI fork server): it dies
        [*LLMOPS, "--lab", str(es.lab), "env", "up", "e", "--packages", f"{PATH_PKG}==2.0"],
        capture_output=True, text=True, timeout=SLOW,
        env={**os.environ, "LLMOPS_FAULT_AT": f"step:{env_steps}", "LLMOPS_FAULT_REF": "env/e"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert es.current_set() == set2  # switched: the killed action got that far
    running = {vllm_python(BLUE), vllm_python(GREEN)} - {None}
    assert running and es.set_python(set2) not in running, running  # not followed

    done = es.run("env", "up", "e")  # nothing asked: reconcile, servers along
    assert done["followers"] == ["server/s"], done
    action = done["action"]
    assert action["summary"] == "env e restarted" and action["status"] == "succeeded", action
    assert verbs(done, "env/e") == ["restart"]
    server = verbs(done, "server/s")
    assert "start" in server and "switch" in server, server
    checks_ok(done)
    assert sorted(map(tuple, action["refs"])) == [("env", "e"), ("server", "s")]
    assert es.set_python(set2) in {vllm_python(BLUE), vllm_python(GREEN)}
    assert answers(es)
    history = {a["id"]: a for a in json.loads(llmops(es.lab, "history", "--json").stdout)}
    assert any(a["status"] == "interrupted" for a in history.values())  # the killed one
    again = es.run("env", "up", "e")  # a second reconcile: nothing to do, checks only
    assert "start" not in verbs(again, "server/s") and again["action"]["status"] == "succeeded"
