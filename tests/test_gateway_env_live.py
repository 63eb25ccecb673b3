"""The gateway on an llmops env, live (issue 15 item 2: "use the host environments mechanism"):
an env on host `local` pins litellm[proxy] and gunicorn; gateway `ge` (`--env lite`) runs
LiteLLM from that env's venv instead of installing its own, routing `chat` to the session's
shared server. Proven from outside llmops: the gunicorn master's own command line
(/proc/<pid>/cmdline) runs the env's current venv set, and a completion answers through it.
Then the gateway and the env are taken down, leaving the shared lab as it was.

One env build (a venv with litellm[proxy] from pip's cache: 1-3 min) and one LiteLLM start.
That an env change restarts the gateway on the new set is the servers' `follows` rule
(tests/test_env_servers*.py prove it live for servers; the gateway's plan cases for it)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from sharedserver import SharedServer

from llmops.ops.kinds.gateway.spec import LITELLM_VERSION

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]

GATEWAY_PORT = 18691
GUNICORN = "gunicorn==23.0.0"
KEY_ENV = "LLMOPS_TEST_GATEWAY_KEY"
KEY = "sk-gwenv-" + secrets.token_hex(12)


def cli(lab: Path, *args: str, check: int | None = 0) -> Any:
    done = llmops(lab, *args, "--json", check=None, timeout=900, env={KEY_ENV: KEY})
    found = json.loads(done.stdout) if done.stdout.strip()[:1] in ("{", "[") else None
    if check is not None and done.returncode != check:
        raise AssertionError(f"exit {done.returncode} != {check}\nstderr: "
                             f"{done.stderr[-2000:]}\nstdout: {done.stdout[-3000:]}")
    return found


@pytest.fixture(scope="module")
def on_env(shared_server: SharedServer) -> Iterator[dict[str, Any]]:
    """Env `lite` and gateway `ge` on it in the shared lab; both gone afterwards."""
    lab = shared_server.lab
    try:
        env = cli(lab, "env", "up", "lite", "--host", "local", "--packages",
                  f"litellm[proxy]=={LITELLM_VERSION},{GUNICORN}")
        assert env["ok"], env
        gateway = cli(lab, "gateway", "up", "ge", "--host", "local", "--port",
                      str(GATEWAY_PORT), "--model", f"chat={shared_server.name}", "--env",
                      "lite", "--master-key-env", KEY_ENV, "--no-bench-prices",
                      "--timeout-s", "300")
        yield {"env": env, "gateway": gateway}
    finally:
        cli(lab, "gateway", "down", "ge", check=None)
        cli(lab, "env", "remove", "lite", check=None)


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_the_gateway_runs_litellm_from_the_env_and_answers(
        on_env: dict[str, Any], shared_server: SharedServer) -> None:
    lab = shared_server.lab
    up = on_env["gateway"]
    assert up["ok"], up
    steps = [s["verb"] for s in up["action"]["steps"] if s["ref"] == "gateway/ge"]
    assert "install" not in steps, steps  # the env's venv, no venv of its own
    failed = [c for c in up["action"]["checks"] if not c["ok"]]
    assert not failed, failed
    work = Path(str(lab).removesuffix("/lab")) / "work"
    venv = work / "envs" / "lite" / "venv"
    assert venv.is_symlink(), venv
    current = venv.resolve()  # the env's venv set as its path points now
    proc = json.loads((work / "run" / "gateway.ge" / "proc.json").read_text())
    argv = cmdline(int(proc["pid"]))
    assert any(a.startswith(str(current)) for a in argv), (argv, current)
    assert not (work / "gateways" / f"litellm-{LITELLM_VERSION}").exists()
    answer = cli(lab, "gateway", "try", "ge", "Who answers?", "--model", "chat",
                 "--max-tokens", "4")
    assert answer["ok"] and answer["server"] == shared_server.name, answer
    assert answer["completion_tokens"] > 0, answer
    listed = {g["name"]: g for g in cli(lab, "gateway", "list")}
    assert listed["ge"]["state"] == "serving", listed["ge"]
    assert KEY not in json.dumps(listed) and KEY not in (lab / "gateways" / "ge.toml").read_text()


def test_the_env_cannot_be_removed_under_its_gateway(
        on_env: dict[str, Any], shared_server: SharedServer) -> None:
    """The gateway names the env (a dependency by field): removing the env first is refused,
    naming the gateway, and nothing is written."""
    lab = shared_server.lab
    before = (lab / "envs" / "lite.toml").read_text()
    refused = cli(lab, "env", "remove", "lite", check=None)
    assert refused is None or not refused.get("ok"), refused
    assert (lab / "envs" / "lite.toml").read_text() == before
    assert os.path.exists(lab / "gateways" / "ge.toml")
