"""Server actions end to end: the real `llmops` CLI, the engine, the journal and real vLLM.

One lab with host `local` for the whole module, and as few vLLM starts as the walk allows
(seven, eager, ~30-40 s each on two cores): `llmops demo` starts the blue-green server `demo`;
its change starts green and its rollback is a switch, both under a loop of streamed
completions while the console and a second CLI contend for the lab lock (issue 13 item 9);
`rollback --last` brings demo back after a `down`. The recreate server `tiny` goes up,
changes (to max_model_len 128 *and* tp 2 where the host offers two ranks, so TP=2 is covered
by the same start, with both ranks' workers seen running) and rolls back; a failed hub
download and a SIGKILL reuse it; then the host "reboots" (every llmops process killed, run
records stale) and a rollback still converges (issue 13 item 3). The demo's `listen` moves to
0.0.0.0 and back, restarting only the forwarder, with its colours seen listening on loopback.
The tests run in file order, and assert what the host's probe reports (cores, GPUs), not
what this machine happens to have.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import LLMOPS, git_log, llmops, llmops_json
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS
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
from llmops.ops.kinds.server.client import VllmClient

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

DEMO_PORT, TINY_PORT = 18301, 18311
SLOW = 600  # seconds a CLI call that starts vLLM may take on a busy shared box


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A lab with host `local` (workdir beside it); servers left at the end are taken down."""
    root = tmp_path_factory.mktemp("server-cli")
    path = root / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"))
    yield path
    for row in llmops_json(path, "server", "list", check=None) or []:
        llmops(path, "server", "down", row["name"], check=None, timeout=SLOW)


@pytest.fixture(scope="module")
def demo_run(lab: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`llmops demo --no-console`: makes the tiny model beside the lab and serves it as demo."""
    began = time.monotonic()
    done = llmops(lab, "demo", "--no-console", "--port", str(DEMO_PORT), timeout=SLOW)
    return done, time.monotonic() - began


@pytest.fixture(scope="module")
def model(lab: Path, demo_run: Any) -> Path:
    """The demo's tiny model; the other servers serve the same folder."""
    return lab.parent / "demo-model"


def snapshot(lab: Path) -> tuple[list[str], int]:
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return git_log(lab), rows


def acted(lab: Path, *args: str) -> Any:
    """An action through the CLI with --json, given the time a vLLM start may take."""
    return json.loads(llmops(lab, *args, "--json", timeout=SLOW).stdout)


def action_ok(result: dict[str, Any]) -> dict[str, Any]:
    """The action succeeded and every check of its checklist passed; returns the record."""
    action = result["action"]
    assert result["ok"], json.dumps(action, indent=1)[:3000]
    assert action["status"] == "succeeded"
    assert action["checks"] and all(c["ok"] for c in action["checks"]), action["checks"]
    assert action["seconds"] > 0
    return dict(action)


def client(port: int, model: str) -> VllmClient:
    return VllmClient(f"http://127.0.0.1:{port}", model)


def live_max_model_len(port: int, model: str) -> int:
    with client(port, model) as c:
        return int(c.http.get("/v1/models").json()["data"][0]["max_model_len"])


def state_of(lab: Path, name: str) -> str:
    rows = {r["name"]: r for r in llmops_json(lab, "server", "list")}
    return str(rows[name]["state"])


def host_facts(lab: Path) -> dict[str, Any]:
    """What the probe of host `local` reported: the tests assert against it, not this box."""
    return dict(llmops_json(lab, "host", "show", "local")["facts"])


def ranks_offered(facts: dict[str, Any]) -> tuple[int, str]:
    """How many tp x pp ranks the host offers, and what the refusal of one more says."""
    gpus = len(facts.get("gpus") or [])
    if gpus:
        return gpus, f"needs {gpus + 1} GPUs; local offers {gpus}"
    cores = int(facts["cpu_count"])
    return cores, f"tp x pp = {cores + 1} is more than the {cores} cores"


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


def test_recreate_up_change_rollback(lab: Path, model: Path) -> None:
    action_ok(acted(lab, "server", "up", "tiny", "--host", "local", "--model",
                          str(model), "--dtype", "float32", "--max-model-len", "256",
                          "--port", str(TINY_PORT), "--cpu-kvcache-gib", "1",
                          "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE))
    assert state_of(lab, "tiny") == "up"
    assert tp_ranks_running(lab, "tiny") == set()  # tp 1: no rank-named workers
    tp = 2 if ranks_offered(host_facts(lab))[0] >= 2 else 1
    # two ranks need vLLM's worker processes: the change turns the inline worker off with them
    changed = action_ok(acted(lab, "server", "up", "tiny", "--max-model-len", "128",
                              "--tp", str(tp), *(["--no-cpu-inline-worker"] if tp > 1 else [])))
    assert [s["verb"] for s in changed["steps"]] == [
        "check-model", "stop", "start", "wait-ready", "smoke"]
    assert live_max_model_len(TINY_PORT, str(model)) == 128
    if tp == 2:  # two ranks run, each its own worker process in the server's session
        assert tp_ranks_running(lab, "tiny") == {0, 1}
    back = action_ok(acted(lab, "rollback", str(changed["id"])))
    assert live_max_model_len(TINY_PORT, str(model)) == 256
    assert tp_ranks_running(lab, "tiny") == set()
    history = {a["id"]: a for a in llmops_json(lab, "history")}
    assert history[changed["id"]]["rolled_back_by"] == back["id"]


def test_completion_stream_and_metrics(lab: Path, model: Path) -> None:
    """The console's client against the shared server: same tokens streamed or not."""
    with client(TINY_PORT, str(model)) as c:
        done = c.completion("Hello", max_tokens=8)
        streamed = c.stream_completion("Hello", max_tokens=8)
        snap = c.metrics()
    assert done.tokens == 8
    assert streamed.ttft is not None and streamed.ttft <= streamed.seconds
    assert streamed.text == done.text  # temperature 0
    assert snap.counters["generation_tokens_total"] >= 16
    assert {"num_requests_running", "kv_cache_usage_perc"} <= set(snap.gauges)
    assert snap.histograms["e2e_request_latency_seconds"][-1][1] >= 2


def pid_of(lab: Path, name: str) -> int:
    """The server's pid from its run folder on the host (workdir beside the lab)."""
    proc = lab.parent / "work" / "run" / name / "proc.json"
    return int(json.loads(proc.read_text())["pid"])


def test_failed_download_leaves_old_server_serving(lab: Path, model: Path,
                                                   tmp_path: Path) -> None:
    """No internet here: a hub id that isn't cached fails to download, before any stop."""
    pid = pid_of(lab, "tiny")
    commits = len(git_log(lab))
    done = llmops(lab, "server", "up", "tiny", "--model", "llmops-test/not-cached", "--json",
                  check=1, env={"HF_HOME": str(tmp_path / "hf")}, timeout=SLOW)
    action = json.loads(done.stdout)["action"]
    assert action["status"] == "failed, reverted" and action["revert_error"] is None
    assert [(s["verb"], s["ok"]) for s in action["steps"]] == [("fetch-weights", False)]
    assert "nothing was stopped" in action["error"]
    assert pid_of(lab, "tiny") == pid  # the very same process
    with client(TINY_PORT, str(model)) as c:
        assert c.completion("Hello", max_tokens=4).tokens == 4
    assert len(git_log(lab)) == commits + 2  # the change and its revert
    assert f'model = "{model}"' in (lab / "servers" / "tiny.toml").read_text()


def tp_ranks_running(lab: Path, name: str) -> set[int]:
    """Tensor-parallel ranks among the processes of the server's session: vLLM titles each
    worker `VLLM::Worker_TP<rank>` (it names no rank when tp is 1)."""
    pid = pid_of(lab, name)
    sid = subprocess.run(["ps", "-o", "sid=", "-p", str(pid)], capture_output=True,
                         text=True, check=True).stdout.strip()
    titles = subprocess.run(["ps", "-o", "args=", "--sid", sid], capture_output=True,
                            text=True, check=True).stdout
    return {int(rank) for rank in re.findall(r"Worker_TP(\d+)", titles)}


def test_sigkill_is_seen_as_crashed(lab: Path) -> None:
    os.kill(pid_of(lab, "tiny"), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (state := state_of(lab, "tiny")) == "up" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.startswith("crashed"), state
    assert llmops(lab, "server", "logs", "tiny", "-n", "5").stdout.strip()


def reboot(lab: Path) -> list[Path]:
    """What a reboot does to host `local`'s llmops processes: every session its run folders
    record dies at once (SIGKILL, no exit status written); the records stay behind, stale."""
    records = sorted((lab.parent / "work" / "run").glob("*/proc.json"))
    sids = {int(json.loads(r.read_text())["sid"]) for r in records}
    for sid in sids:
        try:
            os.killpg(sid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while session_pids(sids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_pids(sids) == set()
    return records


def session_pids(sids: set[int]) -> set[int]:
    """Live processes (not zombies) in any of these sessions."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if fields[0] not in "ZX" and int(fields[3]) in sids:
            found.add(int(entry.name))
    return found


def test_rollback_after_a_host_reboot_converges(lab: Path, model: Path) -> None:
    """Issue 13 item 3: the host `reboots` under the crashed server (every llmops process on
    it gone, its run records stale); `rollback --last server/tiny` still brings tiny up as
    that action's before-state says, with its checklist passing, and nothing stale is left."""
    records = reboot(lab)
    stale = {r.parent.name: json.loads(r.read_text())["pid"] for r in records}
    assert "tiny" in stale and all(not pid_alive(p) for p in stale.values())
    history = llmops_json(lab, "history")
    undo = [a for a in history if ["server", "tiny"] in a["refs"]
            and a["status"] == "succeeded" and a["rolled_back_by"] is None][-1]
    back = action_ok(acted(lab, "rollback", "--last", "server/tiny"))
    assert back["rollback_of"] == undo["id"]
    assert state_of(lab, "tiny") == "up"
    want = 128 if undo["rollback_of"] is not None else 256  # undoing the undo of 256->128
    assert live_max_model_len(TINY_PORT, str(model)) == want
    assert pid_of(lab, "tiny") != stale["tiny"] and pid_alive(pid_of(lab, "tiny"))
    action_ok(acted(lab, "server", "down", "tiny"))


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"
