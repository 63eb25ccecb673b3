"""Server actions end to end: the real `llmops` CLI, the engine, the journal and real vLLM.

One lab with host `local` for the whole module, and as few vLLM starts as the walk allows
(five, ~30 s each on two cores): `llmops demo` starts the blue-green server `demo`, its change
starts green, its rollback is a switch; the recreate server `tiny` goes up, changes (to
max_model_len 128 *and* tp 2, so TP=2 on the CPU build is covered by the same start) and
rolls back; a failed hub download and a SIGKILL reuse it. The tests run in file order.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops, llmops_json

from llmops.ops.kinds.server.client import VllmClient

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

try:
    import vllm  # noqa: F401  (only to know whether the CPU build is installed here)
except Exception:  # noqa: BLE001
    pytest.skip("vLLM is not installed in this venv", allow_module_level=True)

DEMO_PORT, TINY_PORT = 18301, 18311
TIMINGS: dict[str, float] = {}
SLOW = 300  # seconds a CLI call that starts vLLM may take on a busy two-core box


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


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "/abs/model", "--tp", "4"], "tp: tp x pp = 4 is more than the 2 cores"),
        (["--model", "/abs/model", "--arg", "no-such-flag=1"], "--no-such-flag is not an allowed"),
        (["--model", "not a hub id!"], "neither a hub id"),
        (["--model", "/no/such/model"], "not a model folder"),
        (["--model", "BIG"], "does not fit on local"),
    ],
    ids=["tp-too-big", "unknown-arg", "bad-model-id", "path-missing", "too-big-for-ram"],
)
def test_bad_specs_exit_2_and_write_nothing(
    lab: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    if "BIG" in args:  # a 70B config.json in float32: ~263 GiB against this box's RAM
        big = tmp_path / "big"
        big.mkdir()
        (big / "config.json").write_text(json.dumps({
            "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
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
    done, TIMINGS["demo (model + blue-green up)"] = demo_run
    assert "server demo is up" in done.stdout
    assert "ctrl+z" in done.stdout and "--max-model-len 128" in done.stdout
    assert (model / "config.json").is_file()
    assert "healthy after" in done.stderr  # progress lines from vLLM's log were shown
    with client(DEMO_PORT, str(model)) as c:
        assert c.completion("Hello", max_tokens=4).tokens == 4
    assert state_of(lab, "demo") == "up"
    again = llmops(lab, "demo", "--no-console", "--port", str(DEMO_PORT))
    assert "already in the lab" in again.stderr  # a second run changes nothing


def test_blue_green_change_and_rollback(lab: Path, model: Path) -> None:
    changed = action_ok(llmops_json(lab, "server", "up", "demo", "--max-model-len", "128"))
    TIMINGS["blue-green change"] = changed["seconds"]
    assert [s["verb"] for s in changed["steps"]] == [
        "check-model", "start", "wait-ready", "smoke", "switch"]
    assert live_max_model_len(DEMO_PORT, str(model)) == 128
    back = action_ok(llmops_json(lab, "rollback", str(changed["id"])))
    TIMINGS["blue-green rollback"] = back["seconds"]
    assert [s["verb"] for s in back["steps"]] == ["switch"]
    assert back["rollback_of"] == changed["id"]
    assert live_max_model_len(DEMO_PORT, str(model)) == 256
    action_ok(llmops_json(lab, "server", "down", "demo"))  # frees the two cores for the rest


def test_recreate_up_change_rollback(lab: Path, model: Path) -> None:
    up = action_ok(llmops_json(lab, "server", "up", "tiny", "--host", "local", "--model",
                               str(model), "--dtype", "float32", "--max-model-len", "256",
                               "--port", str(TINY_PORT), "--cpu-kvcache-gib", "1"))
    TIMINGS["recreate up (cold start)"] = up["seconds"]
    assert state_of(lab, "tiny") == "up"
    changed = action_ok(llmops_json(lab, "server", "up", "tiny", "--max-model-len", "128",
                                    "--tp", "2"))
    TIMINGS["recreate change (to tp 2)"] = changed["seconds"]
    assert [s["verb"] for s in changed["steps"]] == [
        "check-model", "stop", "start", "wait-ready", "smoke"]
    assert live_max_model_len(TINY_PORT, str(model)) == 128
    back = action_ok(llmops_json(lab, "rollback", str(changed["id"])))
    TIMINGS["recreate rollback"] = back["seconds"]
    assert live_max_model_len(TINY_PORT, str(model)) == 256
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


def test_sigkill_is_seen_as_crashed(lab: Path) -> None:
    os.kill(pid_of(lab, "tiny"), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (state := state_of(lab, "tiny")) == "up" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.startswith("crashed"), state
    assert llmops(lab, "server", "logs", "tiny", "-n", "5").stdout.strip()
    action_ok(llmops_json(lab, "server", "down", "tiny"))  # also ends the orphaned engine


def test_zz_report_timings() -> None:
    """Not a check: what was measured (run with -s), for the report and DESIGN.md."""
    for what, seconds in TIMINGS.items():
        print(f"{what:32s} {seconds:6.1f} s")
