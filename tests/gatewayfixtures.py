"""The live gateway tests' one lab (a pytest plugin: `pytest_plugins = ["gatewayfixtures"]` in
tests/test_gateway_guards_live.py and tests/test_gateway_live.py, so the two modules share ONE
lab instead of starting one each, as tests/clusterfixtures.py does for the Ray cluster): the
real `llmops` CLI, a real LiteLLM proxy (pinned, in its own venv, under gunicorn) in front of
real CPU vLLM servers of the tiny model.

Servers `ga` and `gb` (and the classifier `gd`), gateway `gw` exposing `chat` (ga) and `code`
(gb), `chat` falling back to `code`: 3 vLLM starts and 1 LiteLLM start per session. The
session's order matters and is the files' (pytest sorts them): the guard tests
(test_gateway_guards_live.py: guardrails on chat, the hooks fault, the guard model gd, the
console) run first, while ga serves; test_gateway_live.py (routing, the key, the cache, the
routing walk, the port move, the fallback drill, ga stopped for a fallback, the usage lines
that count all of it, the patches probe, bad specs) stops ga near its end. The lab is taken
down after the last test that uses it (not at the session's end: a CI worker runs other
serial tests after it), and at the session's end for a run that stopped earlier.

The venv is built once per machine under ~/.cache/llmops-tests/litellm-<version> (the first
run installs it through the gateway's own install step, under its lock: ~75-160 s,
~755 MB)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from sharedserver import INLINE, LOOSE_TARGETS, make_tiny_model
from test_gateway_guardmodel import make_guard_model

from llmops.ops import procs
from llmops.ops.kinds.gateway.spec import LITELLM_VERSION
from llmops.ops.kinds.host import HostSpec
from llmops.ops.transport import LocalTransport

PORT_A, PORT_B, GATEWAY_PORT = 18601, 18611, 18621
PORT_A_MOVED = 18603
DRILL_PORT = 18631
GUARD_PORT = 18641
SLOW = 900  # a CLI call that installs LiteLLM or starts vLLM, on a busy shared box
KEY_ENV = "LLMOPS_TEST_GATEWAY_KEY"
KEY = "sk-gwtest-" + secrets.token_hex(12)
UP: dict[str, Any] = {}
"""What `llmops gateway up gw --json` answered when the session's gateway started."""
VENV = Path(os.environ.get("LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests")) \
    / f"litellm-{LITELLM_VERSION}"
FIXTURE = "gateway_lab"
_DOWN: set[Path] = set()


def cli(lab: Path, *args: str, check: int | None = 0, timeout: float = SLOW) -> Any:
    """The CLI's JSON. A failed action's checks that failed are printed first: CI shows only
    the end of a long assertion message."""
    done = llmops(lab, *args, "--json", check=None, timeout=timeout, env={KEY_ENV: KEY})
    found = json.loads(done.stdout) if done.stdout.strip()[:1] in ("{", "[") else None
    if check is not None and done.returncode != check:
        record = found if isinstance(found, dict) else {}
        failed = [c for c in (record.get("action") or {}).get("checks") or []
                  if not c.get("ok")]
        raise AssertionError(f"exit {done.returncode} != {check}; failed checks: {failed}\n"
                             f"stderr: {done.stderr[-2000:]}\nstdout: {done.stdout[-3000:]}")
    return found



def take_down(path: Path) -> None:
    """The gateway, then its servers (once: after the last test, or at the session's end)."""
    if path in _DOWN:
        return
    _DOWN.add(path)
    cli(path, "gateway", "down", "gw", check=None)
    for name in ("ga", "gb", "gd"):
        cli(path, "server", "down", name, check=None)


@pytest.fixture(scope="session")
def gateway_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Host `local`, servers ga and gb (eager tiny model), gateway gw in front of both. Each
    server has its own core: vLLM's auto binding pins every single-rank CPU server to core 0,
    and on this kernel a worker spawned pinned to core 0 beside a busy one pinned there was
    seen never scheduled (0 ms of CPU in 5 minutes: ga's restart behind gb's fallback load)."""
    root = tmp_path_factory.mktemp("gateway")
    path = root / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"))
    model = make_tiny_model(root / "tiny")
    try:
        for name, port, core in (("ga", PORT_A, "0"), ("gb", PORT_B, "1")):
            done = cli(path, "server", "up", name, "--host", "local", "--model", str(model),
                       "--port", str(port), "--dtype", "float32", "--max-model-len", "256",
                       "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true",
                       "--cpu-omp-threads-bind", core, *LOOSE_TARGETS, *INLINE)
            assert done["ok"], done
        guard = make_guard_model(root / "guard")  # the guard model: a crafted classifier
        done = cli(path, "server", "up", "gd", "--host", "local", "--model", str(guard),
                   "--port", str(GUARD_PORT), "--dtype", "float32", "--max-model-len", "256",
                   "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true",
                   "--arg", "runner=pooling", "--arg", "convert=classify",
                   "--cpu-omp-threads-bind", "1", *LOOSE_TARGETS, *INLINE)
        assert done["ok"], done
        VENV.parent.mkdir(parents=True, exist_ok=True)
        done = cli(path, "gateway", "up", "gw", "--host", "local", "--port", str(GATEWAY_PORT),
                   "--model", "chat=ga", "--model", "code=gb", "--fallback", "chat=code",
                   "--price", "ga=1000/2000", "--cooldown-s", "60", "--timeout-s", "300",
                   "--venv", str(VENV),
                   "--master-key-env", KEY_ENV)
        assert done["ok"], done
        UP.update(done, lab=path)
        yield path
    finally:
        take_down(path)


def tried(lab: Path, model: str, prompt: str) -> dict[str, Any]:
    found = cli(lab, "gateway", "try", "gw", prompt, "--model", model, "--max-tokens", "4",
                timeout=120)
    assert found["ok"], found
    return dict(found)


def master_pid(lab: Path) -> int | None:
    work = Path(str(lab).removesuffix("/lab")) / "work"
    t = LocalTransport(HostSpec(name="local", local=True, workdir=str(work)))
    return procs.status(t, "gateway.gw").pid




def work_of(lab: Path) -> Path:
    """The host `local`'s workdir of the lab (beside it)."""
    return Path(str(lab).removesuffix("/lab")) / "work"


def local(lab: Path) -> LocalTransport:
    return LocalTransport(HostSpec(name="local", local=True, workdir=str(work_of(lab))))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test that uses the lab (in this run's order; a CI worker of the serial
    group runs every one of them), the lab goes down."""
    if FIXTURE not in getattr(item, "fixturenames", ()):
        return
    items = item.session.items
    later = items[items.index(item) + 1:] if item in items else []
    if any(FIXTURE in getattr(i, "fixturenames", ()) for i in later):
        return
    path = UP.get("lab")
    if isinstance(path, Path):
        take_down(path)

