"""Server actions end to end, the demo walk: the real `llmops` CLI, the engine, the journal and
real vLLM (the tiny server's walk: tests/test_server_cli_tiny.py; the lab fixture and helpers
both use: tests/servercli_fixtures.py).

One lab with host `local` for the module: `llmops demo` starts the blue-green server `demo`;
bad specs are refused with nothing written; its change starts green and its rollback is a
switch, both under a loop of streamed completions while the console and a second CLI contend
for the lab lock (issue 13 item 9); the demo's `listen` moves to 0.0.0.0 and back, restarting
only the forwarder, with its colours seen listening on loopback; `rollback --last` brings demo
back after a `down`. The tests run in file order, and assert what the host's probe reports
(cores, GPUs), not what this machine happens to have.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from labtools import LLMOPS, llmops, llmops_json
from realparts import require_vllm
from test_console_support import SIZE, close_app_lab, on_screen, opened, shown_text, wait_for
from textual.widgets import Input

from llmops.console.app import LlmopsApp
from llmops.console.messages import ActionDone
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.rollback import RollbackScreen
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.header import LabHeader

pytest.register_assert_rewrite("servercli_fixtures")  # before its import: a plugin
from servercli_fixtures import (  # noqa: E402
    SLOW,
    acted,
    action_ok,
    client,
    host_facts,
    live_max_model_len,
    ranks_offered,
    snapshot,
    state_of,
)

pytest_plugins = ["servercli_fixtures"]

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

DEMO_PORT = 18301


@pytest.fixture(scope="module")
def demo_run(lab: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`llmops demo --no-console`: makes the tiny model beside the lab and serves it as demo."""
    began = time.monotonic()
    done = llmops(lab, "demo", "--no-console", "--port", str(DEMO_PORT), timeout=SLOW)
    return done, time.monotonic() - began


@pytest.fixture(scope="module")
def model(lab: Path, demo_run: Any) -> Path:
    """The tiny model `llmops demo` made beside the lab."""
    return lab.parent / "demo-model"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "/abs/model", "--tp", "RANKS+1"], "RANKS+1"),
        (["--model", "/abs/model", "--arg", "no-such-flag=1"], "--no-such-flag is not an allowed"),
        (["--model", "/abs/model", "--arg", "tokenizer-mode=--api-key=x"], "starts with '-'"),
        (["--model", "/abs/model", "--arg", "host=0.0.0.0"], "set `listen`"),
        (["--model", "not a hub id!"], "neither a hub id"),
        (["--model", "org/.."], "neither a hub id"),
        (["--model", "../x"], "neither a hub id"),
        (["--model", "/no/such/model"], "not a model folder"),
        (["--model", "BIG"], "does not fit on local"),
    ],
    ids=["tp-too-big", "unknown-arg", "arg-value-is-a-flag", "arg-host-is-listen",
         "bad-model-id", "hub-id-dotdot", "hub-id-parent", "path-missing", "too-big"],
)
def test_bad_specs_exit_2_and_write_nothing(
    lab: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    if "RANKS+1" in args:  # one rank more than the host's probe says it offers
        ranks, says = ranks_offered(host_facts(lab))
        if ranks + 1 > 8:
            says = "less than or equal to 8"  # the spec's own limit comes first
        args = [str(ranks + 1) if a == "RANKS+1" else a for a in args]
    if "BIG" in args:  # a config.json of ~2.6T float32 weights: no host holds that
        big = tmp_path / "big"
        big.mkdir()
        (big / "config.json").write_text(json.dumps({
            "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 800,
            "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
            "torch_dtype": "float32"}))
        args = [str(big) if a == "BIG" else a for a in args]
    before = snapshot(lab)
    done = llmops_json(lab, "server", "up", "bad", "--host", "local", *args, check=2)
    assert done["ok"] is False and says in done["error"], done["error"]
    assert snapshot(lab) == before
    assert "bad" not in {r["name"] for r in llmops_json(lab, "server", "list")}


def test_demo_serves_blue_green(lab: Path, model: Path, demo_run: Any) -> None:
    """The tour: the model made, `demo` served blue-green with progress shown, the script."""
    done, _seconds = demo_run
    assert "server demo is up" in done.stdout
    assert "ctrl+z" in done.stdout and "--max-model-len 128" in done.stdout
    assert (model / "config.json").is_file()
    assert "healthy after" in done.stderr  # progress lines from vLLM's log were shown
    with client(DEMO_PORT, str(model)) as c:
        assert c.completion("Hello", max_tokens=4).tokens == 4
    assert state_of(lab, "demo") == "up"
    again = llmops(lab, "demo", "--no-console", "--port", str(DEMO_PORT))
    assert "already in the lab" in again.stderr  # a second run changes nothing


class StreamLoop(threading.Thread):
    """A client of the live port: streamed completions on one keep-alive connection, as an
    application would send them, `pause` seconds apart; every failure is kept. Back to back
    (pause 0) the loop and the serving colour took both cores of a 2-core CI box, and the new
    colour's vLLM took up to 5 minutes to start beside them: paced, the test still switches
    under a steady stream (several requests a second) without starving the start."""

    def __init__(self, port: int, model: str, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.port, self.model, self.pause = port, model, pause
        self.done = threading.Event()
        self.answered = 0
        self.failures: list[str] = []

    def run(self) -> None:
        with client(self.port, self.model) as c:
            while not self.done.is_set():
                try:
                    answer = c.stream_completion("Hello", max_tokens=8)
                    assert answer.text and answer.ttft is not None, answer  # may end at EOS
                    self.answered += 1
                except Exception as exc:  # noqa: BLE001 - each failure is the finding
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self.done.wait(self.pause)

    def stop(self) -> None:
        self.done.set()
        self.join(60)


def servers_view(app: LlmopsApp) -> ResourceVerbs:
    assert app.main is not None
    view = app.main.view("servers")
    assert isinstance(view, ResourceVerbs)
    return view


def serialised(lab: Path) -> None:
    """One lock holder at a time: no two actions of the lab overlap in the journal."""
    actions = sorted(llmops_json(lab, "history"), key=lambda a: a["id"])
    for before, after in zip(actions, actions[1:], strict=False):
        assert after["started_at"] >= before["finished_at"], (before, after)


async def test_blue_green_change_and_rollback_under_load(lab: Path, model: Path) -> None:
    """Issue 13 item 9: streamed completions run steadily through demo's port while a CLI
    changes it (green starts, the port switches) and the console, in this process, rolls it
    back (a switch). Meanwhile a second CLI and the console each try to act and are refused,
    told who holds the lab: one holder at a time, no request fails."""
    load = StreamLoop(DEMO_PORT, str(model))
    load.start()
    refused: list[ActionDone] = []
    app = LlmopsApp(lab)

    def hook(message: object) -> None:
        if isinstance(message, ActionDone) and message.error:
            refused.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await opened(pilot)
        await pilot.press("2")
        view = servers_view(app)
        await wait_for(pilot, lambda: (r := view.rows.get("demo")) is not None
                       and r.state == "up", 60, "demo up in the console")
        before = len(llmops_json(lab, "history"))
        change = await asyncio.create_subprocess_exec(
            *LLMOPS, "--lab", str(lab), "server", "up", "demo", "--max-model-len", "128",
            "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert app.main is not None
        header = app.main.query_one(LabHeader)
        await wait_for(pilot, lambda: header.holder is not None
                       and header.holder.pid == change.pid, 60, "the CLI shown holding the lock")
        assert "server up demo" in (header.holder.command if header.holder else "")

        other = await asyncio.to_thread(
            llmops, lab, "server", "up", "demo", "--max-model-len", "200", "--json", check=3,
            env={"LLMOPS_LOCK_WAIT": "0"})
        said = json.loads(other.stdout)["error"]
        assert f"the lab is busy: pid {change.pid}" in said and "server up demo" in said, said

        await pilot.press("e")
        form = await on_screen(pilot, SpecFormScreen)
        form.query_one("#field-max_model_len", Input).value = "200"
        await wait_for(pilot, lambda: form.spec is not None and form.spec.max_model_len == 200)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: refused, 60, "the console's edit refused")
        assert f"the lab is busy: pid {change.pid}" in (refused[0].error or ""), refused[0]
        await on_screen(pilot, MainScreen)

        out, err = await asyncio.wait_for(change.communicate(), SLOW)
        assert change.returncode == 0, (out + err).decode()
        changed = action_ok(json.loads(out))
        assert [s["verb"] for s in changed["steps"]] == [
            "check-model", "start", "wait-ready", "smoke", "switch"]
        assert live_max_model_len(DEMO_PORT, str(model)) == 128

        await pilot.press("ctrl+z")
        confirm = await on_screen(pilot, ConfirmScreen)
        assert f"action {changed['id']}" in shown_text(confirm.query_one("#confirm-body"))
        await pilot.press("y")
        live = await on_screen(pilot, RollbackScreen)
        await wait_for(pilot, lambda: live.verdict is not None or live.error, SLOW, "verdict")
        assert live.error is None, live.error
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)
    load.stop()
    history = {a["id"]: a for a in llmops_json(lab, "history")}
    new = [(i, a["summary"], a["status"]) for i, a in sorted(history.items())][before:]
    assert len(new) == 2, new  # the change and its rollback; the refusals wrote nothing
    back = action_ok({"ok": True, "action": history[changed["id"] + 1]})
    assert [s["verb"] for s in back["steps"]] == ["switch"]
    assert back["rollback_of"] == changed["id"]
    assert history[changed["id"]]["rolled_back_by"] == back["id"]
    assert live_max_model_len(DEMO_PORT, str(model)) == 256
    serialised(lab)
    assert load.failures == [], load.failures[:5]
    assert load.answered >= 20, load.answered  # it streamed through both switches


def test_listen_moves_only_the_forwarder(lab: Path) -> None:
    """The colours stay on loopback whatever `listen` says: only the forwarder moves."""
    moved = action_ok(acted(lab, "server", "up", "demo", "--listen", "0.0.0.0"))
    assert [s["verb"] for s in moved["steps"]] == ["stop", "start-forwarder"]
    listening = tcp_listeners()
    assert listening[DEMO_PORT] == {"0.0.0.0"}
    colours = [DEMO_PORT + 10000, DEMO_PORT + 20000]
    assert [listening[p] for p in colours if p in listening] == [{"127.0.0.1"}] * 2
    again = action_ok(acted(lab, "rollback", str(moved["id"])))
    assert [s["verb"] for s in again["steps"]] == ["stop", "start-forwarder"]
    assert tcp_listeners()[DEMO_PORT] == {"127.0.0.1"}
    action_ok(acted(lab, "server", "down", "demo"))  # frees the cores for the rest


def test_rollback_last_brings_the_server_back(lab: Path, model: Path) -> None:
    """`rollback --last server/demo`, the CLI twin of the row's ctrl+z: the last action on
    demo not rolled back yet is its `server down`, so demo comes back, serving as before."""
    down = [a for a in llmops_json(lab, "history") if a["summary"] == "server demo down"][-1]
    back = action_ok(acted(lab, "rollback", "--last", "server/demo"))
    assert back["rollback_of"] == down["id"]
    assert state_of(lab, "demo") == "up"
    assert live_max_model_len(DEMO_PORT, str(model)) == 256
    action_ok(acted(lab, "server", "down", "demo"))  # frees the cores again


def tcp_listeners() -> dict[int, set[str]]:
    """Listening IPv4 sockets here (the tests' host is `local`): port -> addresses."""
    found: dict[int, set[str]] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":  # LISTEN
            addr, port = local.split(":")
            ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
            found.setdefault(int(port, 16), set()).add(ip)
    return found
