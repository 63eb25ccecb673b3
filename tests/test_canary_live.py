"""A server change out as a canary, end to end: the real `llmops` CLI, a real LiteLLM proxy
(pinned, its own venv, under gunicorn) in front of ONE real CPU vLLM server of the tiny model,
run as two colours behind its live forwarder.

One lab for the module: server `cy` (blue-green at first: a canary needs a gateway routing to
it, and the gateway needs the server), gateways `gy` and `gz` exposing `chat` (cy), then cy
switched to `strategy = "canary"`. In file order:
- a healthy canary is promoted: under a client loop through the gateway, the change starts
  the new colour and holds; the gateway (following the change in the same action) sends half
  of chat's traffic to it, watches both colours, promotes it (live port switched, one route
  again); zero failed requests, the new colour live after; its rollback is one switch;
- a slower canary is rolled back by its latency gate: the same change again (the
  rolled-back colour is still warm: a canary at once, no vLLM start), its engine paused most
  of the time while routed (SIGSTOP / SIGCONT: every answer slower, none failed); the gate
  says roll back on TTFT p95, the gateway routes back, the action fails and reverts;
- a bad canary is rolled back by its gate: the same change again (green, stopped by the
  previous gate, starts again), its colour stopped mid-window; the gate says roll back,
  the gateway routes back, the action fails and reverts, and the old colour serves
  throughout (zero failed requests: LiteLLM does not cool down a deployment for a refused
  connection, so its retries (5, each picking a deployment by weight: 0.2 for the canary)
  are what keeps a client from seeing the dead canary).

The gates are loose on latency (a 2-core box shared with other runs: latency noise is not
what these tests are about; the gate's numbers are the data cases of test_canary_gate.py).
The venv is the tests' cached one (~/.cache/llmops-tests/litellm-<version>), built under its lock by
whichever gateway test comes first."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gatewayloop import ClientLoop
from labtools import llmops
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS, make_tiny_model

from llmops.ops import procs
from llmops.ops.kinds.gateway.spec import LITELLM_VERSION
from llmops.ops.kinds.host import HostSpec
from llmops.ops.transport import LocalTransport

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]

require_vllm()

PORT, GATEWAY_PORT, GATEWAY2_PORT = 18701, 18721, 18731
BLUE, GREEN = PORT + 10000, PORT + 20000
SLOW = 900
KEY_ENV = "LLMOPS_TEST_CANARY_KEY"
KEY = "sk-cytest-" + secrets.token_hex(12)
VENV = Path(os.environ.get("LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests")) \
    / f"litellm-{LITELLM_VERSION}"
CANARY = ("--canary-share", "0.5", "--canary-min-requests", "3", "--canary-floor-ms", "5000",
          "--canary-max-ttft-ratio", "10", "--canary-max-itl-ratio", "10")
"""Half of the traffic to the canary, and latency gates a loaded box always meets."""


def cli(lab: Path, *args: str, check: int | None = 0, timeout: float = SLOW) -> Any:
    done = llmops(lab, *args, "--json", check=None, timeout=timeout, env={KEY_ENV: KEY})
    found = json.loads(done.stdout) if done.stdout.strip()[:1] in ("{", "[") else None
    if check is not None and done.returncode != check:
        raise AssertionError(f"exit {done.returncode} != {check}\nstderr: "
                             f"{done.stderr[-2000:]}\nstdout: {done.stdout[-4000:]}")
    return found


def work(lab: Path) -> Path:
    return lab.parent / "work"


def transport(lab: Path) -> LocalTransport:
    return LocalTransport(HostSpec(name="local", local=True, workdir=str(work(lab))))


def live_port(lab: Path) -> int:
    return int((work(lab) / "servers" / "cy.live-port").read_text().strip())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("canary")
    path = root / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"))
    model = make_tiny_model(root / "tiny")
    try:
        done = cli(path, "server", "up", "cy", "--host", "local", "--model", str(model),
                   "--port", str(PORT), "--strategy", "blue-green", "--dtype", "float32",
                   "--max-model-len", "256", "--cpu-kvcache-gib", "1",
                   "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE)
        assert done["ok"], done
        refused = cli(path, "server", "up", "cy", "--strategy", "canary", check=2)
        assert "no gateway routes to server cy" in json.dumps(refused), refused
        VENV.parent.mkdir(parents=True, exist_ok=True)
        done = cli(path, "gateway", "up", "gy", "--host", "local", "--port", str(GATEWAY_PORT),
                   "--model", "chat=cy", "--num-retries", "5", "--allowed-fails", "0",
                   "--cooldown-s", "60", "--timeout-s", "300", "--venv", str(VENV),
                   "--master-key-env", KEY_ENV)
        assert done["ok"], done
        done = cli(path, "gateway", "up", "gz", "--host", "local", "--port",
                   str(GATEWAY2_PORT), "--model", "chat=cy", "--num-retries", "5",
                   "--allowed-fails", "0", "--cooldown-s", "60", "--timeout-s", "300",
                   "--venv", str(VENV), "--master-key-env", KEY_ENV)
        assert done["ok"], done
        done = cli(path, "server", "up", "cy", "--strategy", "canary")
        assert done["ok"], done
        yield path
    finally:
        cli(path, "gateway", "down", "gz", check=None)
        cli(path, "gateway", "down", "gy", check=None)
        cli(path, "server", "down", "cy", check=None)


def steps_of(action: dict[str, Any], ref: str) -> list[dict[str, Any]]:
    return [s for s in action["steps"] if s["ref"] == ref and s["phase"] == "apply"]


def test_a_healthy_canary_is_promoted_and_its_rollback_is_a_switch(lab: Path) -> None:
    """Two gateways route to cy (gy and gz, each with its own client loop): gy, the lowest
    name, runs the canary for both (gz's share goes to the new colour too and its usage lines
    are watched); gz plans nothing of its own."""
    assert live_port(lab) == BLUE
    loop = ClientLoop(GATEWAY_PORT, KEY, 0.5, 4, "canary")
    loop2 = ClientLoop(GATEWAY2_PORT, KEY, 0.5, 4, "canary-gz")
    loop.start()
    loop2.start()
    try:
        done = cli(lab, "server", "up", "cy", "--max-model-len", "320", "--canary-window-s",
                   "15", *CANARY)
    finally:
        loop.stop()
        loop2.stop()
    assert done["ok"], done
    action = done["action"]
    assert [s["verb"] for s in steps_of(action, "server/cy")][-1] == "canary-hold"
    gy = steps_of(action, "gateway/gy")
    assert [s["verb"] for s in gy] == ["canary-route", "canary-watch", "canary-promote"], gy
    assert gy[0]["facts"]["gateways"] == ["gy", "gz"], gy[0]
    assert ["gateway", "gz"] in action["refs"] and steps_of(action, "gateway/gz") == []
    assert loop2.failures == [], (loop2.failures[:5], loop2.answered, loop2.retried)
    assert loop2.backends.get(f"http://127.0.0.1:{GREEN}/v1", 0) > 0, loop2.backends
    print(f"gz's client loop: {loop2.answered} answered {loop2.backends}, 0 failed")
    for name in ("gy", "gz"):
        config = json.loads((work(lab) / "gateways" / name / "config.yaml").read_text())
        assert len(config["model_list"]) == 1, (name, config["model_list"])  # one route again
    watch = gy[1]["facts"]
    print(f"canary verdict: {watch['verdict']}\n  canary: {watch['canary']}\n"
          f"  live: {watch['live']}\n  watch {gy[1]['seconds']}s, action {action['seconds']}s")
    assert "PROMOTE" in watch["verdict"], watch
    assert watch["canary"]["gateway_requests"] >= 3 and watch["canary"]["gateway_errors"] == 0
    assert watch["canary"]["requests"] >= 3 and watch["canary"]["ttft_p95_ms"] is not None
    assert live_port(lab) == GREEN  # promoted: the live port serves the new colour
    assert all(c["ok"] for c in action["checks"]), action["checks"]
    assert loop.failures == [], (loop.failures[:5], loop.answered, loop.retried)
    assert loop.backends.get(f"http://127.0.0.1:{GREEN}/v1", 0) > 0, loop.backends  # the share
    print(f"client loop: {loop.answered} answered {loop.backends}, {loop.retried} resent, "
          "0 failed")
    config = json.loads((work(lab) / "gateways" / "gy" / "config.yaml").read_text())
    assert [d["litellm_params"]["api_base"] for d in config["model_list"]] \
        == [f"http://127.0.0.1:{PORT}/v1"]  # one route again
    back = cli(lab, "rollback", str(action["id"]))
    assert back["ok"], back
    assert [s["verb"] for s in steps_of(back["action"], "server/cy")] == ["switch"]
    assert steps_of(back["action"], "gateway/gy") == []
    assert live_port(lab) == BLUE


def routed_to_canary(lab: Path) -> bool:
    """The gateway answers on the weighted config: its record's `loaded` is the marker of the
    config that holds the canary deployment (the watch starts right after)."""
    try:
        config = json.loads((work(lab) / "gateways" / "gy" / "config.yaml").read_text())
        record = json.loads((work(lab) / "gateways" / "gy.json").read_text())
    except (OSError, ValueError):
        return False
    ids = [d["model_info"]["id"] for d in config["model_list"]]
    marker = config["model_list"][0]["model_info"]["llmops_config"]
    return any(i.endswith(".canary") for i in ids) and record.get("loaded") == marker


class StopMidWindow(threading.Thread):
    """Stops the canary's colour a few seconds into the window (once routed to it)."""

    def __init__(self, lab: Path, proc: str) -> None:
        super().__init__(daemon=True)
        self.lab, self.proc, self.done = lab, proc, threading.Event()
        self.stopped = False

    def run(self) -> None:
        while not self.done.wait(0.25):
            if routed_to_canary(self.lab):
                time.sleep(4)
                procs.stop(transport(self.lab), self.proc)
                self.stopped = True
                return


def engine_pids(root: int) -> list[int]:
    """The vLLM engine processes under a colour's process (`VLLM::EngineCore`, and its
    `VLLM::Worker` unless the model runs inline in the engine): where its tokens are made.
    The API server above them is left alone, so the colour still answers /metrics and takes
    requests."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid, rest = int(text.split(" ", 1)[0]), text.rsplit(")", 1)
        names[pid] = text[text.index("(") + 1:text.rindex(")")]
        children.setdefault(int(rest[1].split()[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if names.get(child, "").startswith("VLLM::"):
                found.append(child)
    return found


class SlowDown(threading.Thread):
    """Makes the canary's colour slower once the gateway routes to it, as a slower release
    would be: its engine processes are stopped `pause` s out of every `pause + run` s
    (SIGSTOP / SIGCONT), until the gateway routes back (the gate's verdict); then they run
    on (the gate stops the colour)."""

    def __init__(self, lab: Path, proc: str, pause: float = 1.5, run: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.lab, self.proc, self.done = lab, proc, threading.Event()
        self.pause, self.run_s = pause, run
        self.cycles = 0
        self.pids: list[int] = []

    def signal(self, sig: signal.Signals) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def run(self) -> None:
        while not self.done.wait(0.25) and not routed_to_canary(self.lab):
            pass
        pid = procs.status(transport(self.lab), self.proc).pid
        self.pids = engine_pids(pid) if pid else []
        try:
            while self.pids and not self.done.is_set() and routed_to_canary(self.lab):
                self.signal(signal.SIGSTOP)
                time.sleep(self.pause)
                self.signal(signal.SIGCONT)
                self.cycles += 1
                time.sleep(self.run_s)
        finally:
            self.signal(signal.SIGCONT)


def test_a_slower_canary_is_rolled_back_by_its_latency_gate(lab: Path) -> None:
    """The change of the first test again, now with latency gates that mean it (2x the live
    colour's p95 and 200 ms slower); green, rolled back from but still warm, is a canary at
    once (no vLLM start) and is made slower as soon as the gateway routes to it (its engine
    runs 0.1 s of every 1.6 s). The gate that fails is latency: TTFT p95 above 2x; no error
    (the client loop sees none: slower answers are still answers)."""
    assert live_port(lab) == BLUE  # after the first test's rollback: green is the idle colour
    loop, slow = ClientLoop(GATEWAY_PORT, KEY, 0.5, 4, "canary"), SlowDown(lab, "cy-green")
    loop.start()
    slow.start()
    try:
        done = cli(lab, "server", "up", "cy", "--max-model-len", "320", "--canary-window-s",
                   "30", *CANARY, "--canary-max-ttft-ratio", "2", "--canary-max-itl-ratio",
                   "2", "--canary-floor-ms", "200", check=1)
    finally:
        slow.done.set()
        loop.stop()
        slow.join(30)
    action = done["action"]
    assert slow.pids and slow.cycles >= 3, (slow.pids, slow.cycles)
    assert action["status"] == "failed, reverted", action
    assert [s["verb"] for s in steps_of(action, "server/cy")] == ["canary-hold"]  # no start
    gy = steps_of(action, "gateway/gy")
    assert [(s["verb"], s["ok"]) for s in gy] == [("canary-route", True),
                                                  ("canary-watch", False)], gy
    error = action["error"]
    assert "canary gate: ROLL BACK" in error and "TTFT p95" in error and "above 2x" in error, \
        error
    assert "error rate" not in error and "does not answer" not in error, error
    assert all(c["ok"] for c in action["checks"] if c["phase"] == "revert"), action["checks"]
    assert live_port(lab) == BLUE
    assert not procs.status(transport(lab), "cy-green").running  # the gate stopped it
    config = json.loads((work(lab) / "gateways" / "gy" / "config.yaml").read_text())
    assert len(config["model_list"]) == 1  # routed back
    assert loop.failures == [], (loop.failures[:5], loop.answered, loop.retried)
    green = loop.backends.get(f"http://127.0.0.1:{GREEN}/v1", 0)
    assert green >= 3, loop.backends  # the canary's share answered, slowly
    print(f"slow canary: {error}\n  client loop: {loop.answered} answered {loop.backends}, "
          f"{loop.retried} resent, 0 failed; {slow.cycles} pauses; action {action['seconds']}s")


def test_a_canary_that_fails_is_rolled_back_by_its_gate(lab: Path) -> None:
    """The change of the first test again (max_model_len 320), with a 60 s window and a 0.2
    share: green was stopped by the slow canary's gate, so the change starts it again (the
    module's one vLLM start beyond the fixture's and the first test's) and holds; it is
    stopped a few seconds into the window."""
    assert live_port(lab) == BLUE  # after the slow canary's revert: blue still live
    loop, stopper = ClientLoop(GATEWAY_PORT, KEY, 0.5, 4, "canary"), StopMidWindow(lab, "cy-green")
    loop.start()
    stopper.start()
    try:
        done = cli(lab, "server", "up", "cy", "--max-model-len", "320", "--canary-window-s",
                   "60", *CANARY, "--canary-share", "0.2", check=1)
    finally:
        stopper.done.set()
        loop.stop()
    action = done["action"]
    assert stopper.stopped, action["steps"]
    assert action["status"] == "failed, reverted", action
    cy = [s["verb"] for s in steps_of(action, "server/cy")]
    assert cy[-1] == "canary-hold" and "switch" not in cy, cy  # green started, held
    # the gate saw it stop: its /metrics gone (two scrapes) or the gateway's errors to it
    assert "canary gate: ROLL BACK" in action["error"], action["error"]
    assert "does not answer" in action["error"] or "error rate" in action["error"], action
    gy = steps_of(action, "gateway/gy")
    assert [(s["verb"], s["ok"]) for s in gy] == [("canary-route", True),
                                                  ("canary-watch", False)], gy
    assert all(c["ok"] for c in action["checks"] if c["phase"] == "revert"), action["checks"]
    assert live_port(lab) == BLUE
    assert not procs.status(transport(lab), "cy-green").running
    config = json.loads((work(lab) / "gateways" / "gy" / "config.yaml").read_text())
    assert len(config["model_list"]) == 1  # routed back
    assert loop.failures == [], (loop.failures[:5], loop.answered, loop.retried)
    assert loop.backends.get(f"http://127.0.0.1:{PORT}/v1", 0) > 0, loop.backends
    print(f"bad canary: {action['error']}\n  client loop: {loop.answered} answered "
          f"{loop.backends}, {loop.retried} resent, 0 failed; action {action['seconds']}s")
