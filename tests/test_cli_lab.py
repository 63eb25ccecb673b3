"""Which lab a command opens, and what reading it may write: only `llmops init` (or a first
`host add` on the default lab) creates a lab, a mistyped --lab or --read-only never does,
`--read-only host probe` records nothing, and `server list` says `starting` until vLLM
answers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labtools import LLMOPS, llmops, llmops_json
from realparts import IN_CI
from test_cli_text import fake_vllm, has_vllm_dist

from llmops.rollback.lab import is_lab

PY = sys.executable


def test_missing_lab_is_refused_naming_the_fix(tmp_path: Path) -> None:
    typo = tmp_path / "lba"
    done = llmops(typo, "host", "list", check=2, create=False)
    assert f"there is no lab at {typo}: create it with `llmops --lab {typo} init`" in done.stderr
    done = llmops(typo, "--read-only", "history", check=2, create=False)
    assert "--read-only creates none" in done.stderr
    as_json = json.loads(llmops(typo, "server", "list", "--json", check=2, create=False).stdout)
    assert "llmops --lab" in as_json["error"]
    llmops(typo, check=2, create=False, timeout=30)  # the console, too, opens no typo
    assert not typo.exists()


def test_init_creates_a_lab_once(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    assert "created the lab" in llmops(lab, "init", create=False).stdout
    assert is_lab(lab)
    assert "a lab already" in llmops(lab, "init", create=False).stdout
    assert llmops_json(lab, "history") == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    done = llmops(tmp_path / "notes", "init", check=2, create=False)
    assert "is not a lab" in done.stderr and not (tmp_path / "notes" / ".git").exists()
    llmops(tmp_path / "ro", "--read-only", "init", check=2, create=False)
    assert not (tmp_path / "ro").exists()


def test_first_host_add_creates_the_default_lab_with_a_notice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMOPS_LAB"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    default = tmp_path / "data" / "llmops" / "lab"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*LLMOPS, *args], capture_output=True, text=True, env=env)

    listed = run("host", "list")
    assert listed.returncode == 2 and "`llmops init` creates it" in listed.stderr
    assert not default.exists()
    added = run("host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    assert added.returncode == 0, added.stderr
    assert f"creating the lab at {default}" in added.stderr and is_lab(default)


def observed_at(lab: Path) -> str:
    with sqlite3.connect(lab / "lab.db") as db:
        return str(db.execute("select at from observed where name = 'local'").fetchone()[0])


def test_read_only_probe_records_nothing(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    before = observed_at(lab)
    facts = llmops_json(lab, "--read-only", "host", "probe", "local")
    assert facts["python_version"]
    assert observed_at(lab) == before
    llmops(lab, "host", "probe", "local")
    assert observed_at(lab) != before


@pytest.mark.skipif(not has_vllm_dist() and not IN_CI,  # in CI: run, and fail
                    reason="the host probe must report a vLLM build")
def test_server_list_says_starting_until_health_answers(tmp_path: Path) -> None:
    """A stand-in vLLM that runs but never listens: `server list` must not call it up."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    env = {**os.environ, **fake_vllm(tmp_path), "FAKE_VLLM_SECONDS": "20"}
    argv = [*LLMOPS, "--lab", str(lab), "server", "up", "slow", "--host", "local",
            "--model", str(model), "--port", "18393"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        states: list[str] = []
        while "starting" not in states:
            assert proc.poll() is None and time.monotonic() < deadline, states
            rows = llmops_json(lab, "--read-only", "server", "list")
            states += [r["state"] for r in rows]
        assert "up" not in states
    finally:
        proc.wait(timeout=120)  # the stand-in exits; the action fails and reverts
    assert proc.returncode == 1


def test_plan_lists_every_resource_when_one_host_is_down(tmp_path: Path) -> None:
    """A host that does not answer marks its resources "unreachable" (with why); the others'
    rows are still planned, and `plan` itself succeeds."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "work"))
    (lab / "hosts" / "far.toml").write_text(
        'address = "127.0.0.1"\nport = 9\nuser = "nobody"\n')  # nothing listens on port 9
    (lab / "servers").mkdir(exist_ok=True)
    (lab / "servers" / "s.toml").write_text('host = "far"\nmodel = "org/m"\nport = 18999\n')
    rows = {r["resource"]: r for r in llmops_json(lab, "plan")}
    assert rows["server/s"]["state"] == "unreachable", rows
    assert "far" in rows["server/s"]["note"], rows["server/s"]
    assert rows["host/far"]["hand_edited"] and rows["host/local"]["steps"] == []
