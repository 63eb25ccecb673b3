"""The gateway's install step under its lock (ops/hostside/gateway_install.py, run by the
kind's apply.py): the tests' cached LiteLLM venv (~/.cache/llmops-tests/litellm-<version>) is
built by whichever live module's `gateway up --venv` comes first, and two test runs (or two
pytest workers) could race pip against pip in it. The real script, this machine's python,
no pip run: the venv's marker already names the release, as a finished install leaves it."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

from llmops.ops.kinds.gateway.apply import INSTALL_SCRIPT, MARKER
from llmops.ops.kinds.gateway.spec import LITELLM_VERSION


def install(venv: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", INSTALL_SCRIPT, str(venv), LITELLM_VERSION],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_an_install_waits_for_the_one_running_and_then_installs_nothing(tmp_path: Path) -> None:
    """Another install holds the venv's lock: this one says it waits and does not return
    while the lock is held; once it is released it finds the marker the other one wrote
    (the release it wants) and ends at once, rc 0, without creating or touching the venv."""
    venv = tmp_path / "cache" / f"litellm-{LITELLM_VERSION}"
    venv.mkdir(parents=True)
    with (tmp_path / "cache" / f"{venv.name}.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other install, still running
        waiting = install(venv)
        time.sleep(3.0)
        assert waiting.poll() is None, waiting.communicate()  # it waits for the lock
        (venv / MARKER).write_text(LITELLM_VERSION)  # what the other install writes last
        began = time.monotonic()
    out, _ = waiting.communicate(timeout=60)  # the lock is released by the close
    assert waiting.returncode == 0, out
    assert time.monotonic() - began < 30, out
    assert f"waiting for another install into {venv}" in out, out
    assert f"installed litellm {LITELLM_VERSION} (by another install)" in out, out
    assert (venv / MARKER).read_text() == LITELLM_VERSION
    assert sorted(p.name for p in venv.iterdir()) == [MARKER], out  # no venv made, no pip


def test_two_installs_at_once_do_not_both_install(tmp_path: Path) -> None:
    """Two installs started together into a venv the marker already names: each takes the
    lock in turn, neither runs pip (no bin/python made)."""
    venv = tmp_path / f"litellm-{LITELLM_VERSION}"
    venv.mkdir()
    (venv / MARKER).write_text(LITELLM_VERSION)
    runs = [install(venv), install(venv)]
    outs = [r.communicate(timeout=60)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outs
    assert all("(by another install)" in out for out in outs), outs
    assert not (venv / "bin").exists() and (tmp_path / f"{venv.name}.lock").exists()
