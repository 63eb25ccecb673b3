"""Ingest as a detached worker (ops/kinds/index/worker.py) with the real CLI, the session's
CPU vLLM embedding server and the Weaviate stand-in: the acting CLI SIGKILLed mid-ingest
leaves the worker running to the end on its own; a worker SIGKILLed mid-ingest fails its
action and is resumed by the next `llmops index ingest`, which adds only what was missing;
both end with the exact count (chunk ids by content hash: nothing twice)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import LLMOPS, llmops
from test_index_support import KEY_ENV, Setup, act, checks, embedding_setup, start_standin

WAIT_S = 600

pytestmark = pytest.mark.timeout(1500)  # the first test here may start the embedding vLLM


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Setup:
    return embedding_setup(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def standin(setup: Setup) -> Iterator[Any]:
    handle = start_standin(setup.root / "worker-backups", api_key=setup.key)
    try:
        yield handle
    finally:  # the session's lab outlives this module's stand-in
        llmops(setup.lab, "index", "remove", "bulk", check=None, env=setup.env, timeout=300)
        handle.stop()


def corpus(folder: Path, first: int, last: int) -> Path:
    """Documents of ~1,200 characters each, every sentence its own (distinct chunks)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, last):
        text = " ".join(f"Note {n}.{s}: the {['pump', 'valve', 'gauge', 'relay'][s % 4]} "
                        f"number {n * 31 + s} was checked on shelf {s} and found in order."
                        for s in range(14))
        (folder / f"note-{n:03d}.txt").write_text(text)
    return folder


def progress_of(lab: Path, name: str) -> list[dict[str, Any]]:
    path = lab / ".ingest" / name / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def worker_pid(lab: Path, name: str) -> int:
    return int(json.loads((lab / ".ingest" / name / "pid").read_text())["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, ProcessLookupError):
        return False
    return state != "Z"


def mid_ingest(lab: Path, name: str, proc: subprocess.Popen[str] | None = None
               ) -> dict[str, Any]:
    """Wait until the worker has put some but not all chunks in; its newest counts."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        counts = [e for e in progress_of(lab, name) if "chunks_done" in e]
        if counts and counts[0]["chunks_done"] < counts[-1]["chunks_done"] \
                < counts[-1]["chunks_total"]:  # this worker put some in, not all yet
            return counts[-1]
        assert proc is None or proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    pytest.fail(f"no progress from the {name} worker: {progress_of(lab, name)[-3:]}")


def count_of(lab: Path, env: dict[str, str]) -> int:
    """The objects in the index's collection as `llmops index list` counts them now."""
    listed = json.loads(llmops(lab, "index", "list", "--json", env=env).stdout)
    row = next(r for r in listed if r["name"] == "bulk")
    assert row["state"] == "ready", row
    return int(row["count"])


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while alive(pid):
        assert time.monotonic() < deadline, f"worker {pid} still runs"
        time.sleep(0.2)


def test_the_worker_outlives_the_cli_and_a_killed_worker_is_resumed(setup: Setup,
                                                                      standin: Any) -> None:
    lab, env = setup.lab, setup.env
    docs = corpus(setup.root / "bulk-docs", 0, 30)
    cli = subprocess.Popen(
        [*LLMOPS, "--lab", str(lab), "index", "create", "bulk", "--host", "local",
         "--collection", "Bulk", "--embed-server", "emb", "--http-port",
         str(standin.http_port), "--grpc-port", str(standin.grpc_port), "--api-key-env",
         KEY_ENV, "--source", str(docs), "--chunk-size", "120", "--chunk-overlap", "0",
         "--batch-size", "4", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    seen = mid_ingest(lab, "bulk", cli)
    pid = worker_pid(lab, "bulk")
    cli.send_signal(signal.SIGKILL)
    cli.communicate(timeout=60)
    assert alive(pid), "the worker died with the CLI"
    wait_gone(pid)
    result = json.loads((lab / ".ingest" / "bulk" / "result.json").read_text())
    assert result["ok"], result
    total = seen["chunks_total"]
    assert result["result"]["count"] == result["result"]["chunks"] == total
    assert seen["docs_total"] == 30 and "chunks_per_s" in seen and "docs_per_s" in seen
    last = progress_of(lab, "bulk")[-1]
    assert last.get("line", "").startswith("ingest done")
    counts = [e for e in progress_of(lab, "bulk") if "chunks_done" in e][-1]
    assert counts["chunks_done"] == total and counts["docs_done"] == 30

    again = llmops(lab, "index", "ingest", "bulk", env=env, timeout=WAIT_S).stderr
    assert "ingest done: 0 added" in again, again[-2000:]  # the worker did it all
    assert count_of(lab, env) == total

    corpus(docs, 30, 45)  # more documents; the worker of their ingest is killed mid-way
    cli = subprocess.Popen(
        [*LLMOPS, "--lab", str(lab), "index", "ingest", "bulk", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    seen = mid_ingest(lab, "bulk", cli)
    os.kill(worker_pid(lab, "bulk"), signal.SIGKILL)
    out, _err = cli.communicate(timeout=120)
    assert cli.returncode == 1, out
    assert "ended without a result" in json.loads(out)["action"]["error"]

    resumed = llmops(lab, "index", "ingest", "bulk", env=env, timeout=WAIT_S).stderr
    assert "resuming:" in resumed, resumed[-2000:]
    added = int(resumed.split("ingest done: ")[1].split(" added")[0])
    assert 0 < added <= seen["chunks_total"] - seen["chunks_done"]
    assert count_of(lab, env) == seen["chunks_total"] > total  # exact: nothing twice or missing
    action = act(lab, "index", "ingest", "bulk", env=env)  # and its checklist passes
    assert all(c["ok"] for c in checks(action).values()), checks(action)
