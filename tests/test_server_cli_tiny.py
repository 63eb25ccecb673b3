"""Server actions end to end, the tiny walk: the real `llmops` CLI, the engine, the journal and
real vLLM (the demo walk: tests/test_server_cli.py; the lab fixture and helpers both use:
tests/servercli_fixtures.py).

One lab with host `local` for the module and one recreate server `tiny` on the tiny model
(made here, no vLLM): it goes up, changes (to max_model_len 128 *and* tp 2 where the host
offers two ranks, so TP=2 is covered by the same start, with both ranks' workers seen
running) and rolls back; the client streams and reads metrics from it; a failed hub download
and a SIGKILL reuse it; then the host "reboots" (every llmops process killed, run records
stale) and a rollback still converges (issue 13 item 3). The tests run in file order, and
assert what the host's probe reports (cores, GPUs), not what this machine happens to have.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from labtools import git_log, llmops, llmops_json
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS, make_tiny_model

pytest.register_assert_rewrite("servercli_fixtures")  # before its import: a plugin
from servercli_fixtures import (  # noqa: E402
    SLOW,
    acted,
    action_ok,
    client,
    host_facts,
    live_max_model_len,
    pid_of,
    ranks_offered,
    state_of,
)

pytest_plugins = ["servercli_fixtures"]

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

TINY_PORT = 18311


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notes' tiny Llama (the demo's model, made by the same host-side script)."""
    return make_tiny_model(tmp_path_factory.mktemp("server-cli-tiny") / "tiny-model")


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
