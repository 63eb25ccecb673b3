"""A gateway routing to a server on ANOTHER host (issue 15 item 2): a real vLLM on a namespace
sshd host (tests/sshhosts.py: its own network, its own address), a real LiteLLM on this
machine in front of it.

The server listens on its host's own address only (`--listen <that address>`: the interface
the operator chose), never 0.0.0.0, so its port is not on the host's other interfaces and
the gateway's traffic goes to that address, nowhere else; no key leaves this machine (the
gateway reaches the server over plain HTTP on the address the server listens on, not over
SSH). The gateway's config names the server's address (from the lab: the host's `address`
and the server's `port`), its checklist asks the model through it, `try` shows the server
that answered; the listening socket is read inside the namespace to prove it is bound to that
address alone. Then the server moves to its host's loopback and the gateway reaches it through
its own SSH tunnel (tunnels.py), in the same action. One vLLM start (the remote server), one
restart (the move) and one LiteLLM start."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS, make_tiny_model
from sshhosts import SshHost, SshHostFactory

from llmops.ops.kinds.gateway.spec import LITELLM_VERSION

pytestmark = [pytest.mark.vllm, pytest.mark.ssh, pytest.mark.timeout(1200)]

require_vllm()

SERVER_PORT, GATEWAY_PORT = 18651, 18661
KEY_ENV = "LLMOPS_TEST_GATEWAY_KEY"
KEY = "sk-gwremote-" + secrets.token_hex(12)
VENV = Path(os.environ.get("LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests")) \
    / f"litellm-{LITELLM_VERSION}"
FAR: dict[str, Any] = {}


def cli(lab: Path, *args: str, check: int | None = 0, timeout: float = 900) -> Any:
    done = llmops(lab, *args, "--json", check=None, timeout=timeout, env={KEY_ENV: KEY})
    found = json.loads(done.stdout) if done.stdout.strip()[:1] in ("{", "[") else None
    if check is not None and done.returncode != check:
        record = found if isinstance(found, dict) else {}
        failed = [c for c in (record.get("action") or {}).get("checks") or [] if not c.get("ok")]
        raise AssertionError(f"exit {done.returncode} != {check}; failed checks: {failed}\n"
                             f"stderr: {done.stderr[-2000:]}\nstdout: {done.stdout[-3000:]}")
    return found


@pytest.fixture(scope="module")
def lab(ssh_host_factory: SshHostFactory, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Path]:
    """Host `local` (this machine: the gateway), host `far` (a namespace sshd host: the
    server `fa`, listening on far's address only), gateway `gx` on local: chat -> fa."""
    far = ssh_host_factory("gwfar")
    FAR["host"] = far
    root = tmp_path_factory.mktemp("gateway-remote")
    path = root / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"))
    llmops(path, "host", "add", "far", "--address", far.address, "--user", far.user, "--key",
           str(far.key_path), "--python", far.spec().python, "--workdir", str(far.workdir),
           "--trust", far.host_pub_fingerprint)
    model = make_tiny_model(root / "tiny")
    try:
        done = cli(path, "server", "up", "fa", "--host", "far", "--model", str(model),
                   "--listen", far.address, "--port", str(SERVER_PORT), "--dtype", "float32",
                   "--max-model-len", "256", "--cpu-kvcache-gib", "1",
                   "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE)
        assert done["ok"], done
        VENV.parent.mkdir(parents=True, exist_ok=True)
        done = cli(path, "gateway", "up", "gx", "--host", "local", "--port", str(GATEWAY_PORT),
                   "--model", "chat=fa", "--timeout-s", "300", "--venv", str(VENV),
                   "--master-key-env", KEY_ENV, "--no-bench-prices")
        FAR["up"] = done
        assert done["ok"], done
        yield path
    finally:
        cli(path, "gateway", "down", "gx", check=None)
        cli(path, "server", "down", "fa", check=None)


def listening(far: SshHost, port: int) -> list[str]:
    """The local addresses of the sockets listening on `port` inside far's namespace."""
    proc = far.netns("ss", "-ltnH", stdout=-1)
    out, _ = proc.communicate(timeout=30)
    found = []
    for line in out.decode().splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1] == str(port):
            found.append(cols[3].rsplit(":", 1)[0])
    return found


def test_the_gateway_routes_to_a_server_on_another_host(lab: Path) -> None:
    far: SshHost = FAR["host"]
    base = f"http://{far.address}:{SERVER_PORT}/v1"
    action = FAR["up"]["action"]
    checks = {c["name"]: c for c in action["checks"]}
    assert all(c["ok"] for c in checks.values()), checks
    assert base in checks["model chat"]["detail"], checks["model chat"]
    answer = cli(lab, "gateway", "try", "gx", "Who answers?", "--model", "chat",
                 "--max-tokens", "4", timeout=120)
    assert answer["ok"] and (answer["server"], answer["api_base"]) == ("fa", base), answer
    assert answer["completion_tokens"] > 0, answer
    work = Path(str(lab).removesuffix("/lab")) / "work"
    config = json.loads((work / "gateways" / "gx" / "config.yaml").read_text())
    assert [d["litellm_params"]["api_base"] for d in config["model_list"]] == [base], config
    assert listening(far, SERVER_PORT) == [far.address]  # that address only: not 0.0.0.0


def listening_here(port: int) -> list[str]:
    """The local addresses of the sockets listening on `port` on this machine."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, timeout=30).stdout
    return [cols[3].rsplit(":", 1)[0] for cols in (line.split() for line in out.splitlines())
            if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1] == str(port)]


def test_a_server_on_loopback_of_another_host_is_reached_through_the_gateways_tunnel(
        lab: Path) -> None:
    """fa moves to far's loopback: nothing outside far can reach its port now. The gateway
    follows in the same action: its SSH tunnel (a process here, where the lab's key is)
    listens on this machine's loopback only and carries the requests to far's 127.0.0.1;
    config, checklist (`tunnel fa`, `model chat`) and `try` go through it. `gateway down`
    stops the tunnel with the proxy."""
    far: SshHost = FAR["host"]
    port = GATEWAY_PORT + 100  # the gateway's port + 100 + fa's place among its servers (0)
    moved = cli(lab, "server", "up", "fa", "--listen", "127.0.0.1")
    assert moved["ok"], moved
    gw = [s["verb"] for s in moved["action"]["steps"] if s["ref"] == "gateway/gx"]
    assert gw == ["tunnel", "write-config", "reload", "wait-ready"], gw
    checks = {c["name"]: c for c in moved["action"]["checks"] if c["ref"] == "gateway/gx"}
    assert checks["tunnel fa"]["ok"] and checks["model chat"]["ok"], checks
    base = f"http://127.0.0.1:{port}/v1"
    assert base in checks["model chat"]["detail"], checks["model chat"]
    answer = cli(lab, "gateway", "try", "gx", "Through the tunnel?", "--model", "chat",
                 "--max-tokens", "4", timeout=120)
    assert answer["ok"] and (answer["server"], answer["api_base"]) == ("fa", base), answer
    assert listening(far, SERVER_PORT) == ["127.0.0.1"]  # fa: far's loopback only
    assert listening_here(port) == ["127.0.0.1"]  # the tunnel: this machine's loopback only
    work = Path(str(lab).removesuffix("/lab")) / "work"
    tunnel = json.loads((work / "run" / "gateway.gx.tunnel.fa" / "proc.json").read_text())
    assert str(far.key_path) in tunnel["argv"] and far.address in tunnel["argv"], tunnel
    down = cli(lab, "gateway", "down", "gx")
    assert down["ok"], down
    verbs = [(s["verb"], s.get("detail", "")) for s in down["action"]["steps"]]
    assert [v for v, _ in verbs] == ["stop", "stop", "forget"], verbs
    assert not listening_here(port)
