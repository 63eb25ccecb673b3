"""A long install survives the console (issue 14 item 2): `llmops env add` is killed with its
whole process group (as a closed terminal would) while the host's pip is in the middle of
downloading a wheel; the detached build (procctl `env-NAME`, its own session) goes on, finishes
with no llmops running, and the next `llmops env up` recovers the interrupted action and picks
the finished venv up (a switch, no second install).

The index is a real HTTP index on this machine (PEP 503, the tiny test wheels) that holds each
wheel's download until the test lets it go: pip is mid-install, not before or after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from labtools import LLMOPS, llmops
from test_env_kind import FREEZE2, PIN2, freeze_of
from test_env_wheels import make_wheels


class HeldIndex:
    """A PEP 503 index over HTTP whose wheel downloads wait until `release` is set."""

    def __init__(self, folder: Path) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.endswith(".whl"):
                    held.asked.set()
                    held.release.wait(timeout=300)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          partial(Handler, directory=str(folder)))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_index(tmp_path: Path) -> Iterator[HeldIndex]:
    index = HeldIndex(make_wheels(tmp_path / "wheels"))
    try:
        yield index
    finally:
        index.close()


def processes(lab: Path) -> dict[str, dict[str, Any]]:
    """The host's llmops processes by name (`host show`, read-only: it recovers nothing)."""
    shown = json.loads(llmops(lab, "host", "show", "local", "--json").stdout)
    return {p["name"]: p for p in shown["processes"]}


def test_killed_cli_mid_pip_the_build_finishes_and_is_picked_up(
        tmp_path: Path, held_index: HeldIndex) -> None:
    lab, work = tmp_path / "lab", tmp_path / "work"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(work))
    argv = [*LLMOPS, "--lab", str(lab), "env", "add", "slow", "--host", "local", "--packages",
            PIN2, "--index-url", held_index.url, "--json"]
    cli = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        assert held_index.asked.wait(timeout=240), "pip never asked the index for a wheel"
        assert cli.poll() is None, "the CLI ended before pip got to the wheel"
        os.killpg(cli.pid, signal.SIGKILL)  # the CLI and everything in its group
        cli.wait(timeout=60)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
    shown = llmops(lab, "host", "show", "local", "--json")  # the next command, any command
    assert f"was interrupted: llmops (pid {cli.pid}," in shown.stderr, shown.stderr  # reported
    build = {p["name"]: p for p in json.loads(shown.stdout)["processes"]}["env-slow"]
    assert build["state"] == "running", build  # pip still waiting on its download

    began = time.monotonic()
    held_index.release.set()  # pip gets its wheels; no llmops runs now
    root = work / "envs" / "slow"
    results: list[Path] = []
    while not results:
        assert time.monotonic() - began < 240, "the detached build never finished"
        time.sleep(0.2)
        results = list((root / "jobs").glob("*.result.json"))
    result = json.loads(results[0].read_text())
    assert result["ok"] and sorted(result["lines"]) == FREEZE2, result
    assert processes(lab)["env-slow"]["state"] != "running"
    venv = root / "venv"
    assert not venv.exists()  # built, but the killed action never switched to it

    planned = json.loads(llmops(lab, "plan", "--json").stdout)
    assert next(p for p in planned if p["resource"] == "env/slow")["steps"] == [
        f"switch: point the venv path at venv {result['set']}"]  # reported, nothing reinstalled
    built_at = results[0].stat().st_mtime

    done = llmops(lab, "env", "up", "slow", timeout=600)  # nothing asked: reconcile the host
    said = done.stdout + done.stderr  # the action's lines, its progress
    assert f"switch: point the venv path at venv {result['set']}" in said, said
    assert "build" not in said and "pip install" not in said, said
    assert results[0].stat().st_mtime == built_at  # the finished build was not run again
    assert freeze_of(venv) == FREEZE2
    assert os.path.basename(os.readlink(venv)) == result["set"]
    shown = json.loads(llmops(lab, "env", "show", "slow", "--json").stdout)
    assert shown["state"] == "ready" and not shown["extra"] and not shown["missing"]
    history = {a["id"]: a for a in json.loads(llmops(lab, "history", "--json").stdout)}
    killed = next(a for a in history.values() if a["summary"] == "env slow added")
    assert killed["status"] == "interrupted" and killed["error"].endswith("died mid-action")
    assert history[max(history)]["summary"] == "env slow restarted"  # the reconcile, journalled
    assert history[max(history)]["status"] == "succeeded"
