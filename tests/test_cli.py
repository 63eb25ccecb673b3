"""The real `llmops` CLI in a subprocess: exit codes, --json, bad input, read-only, the lock,
and import hygiene (an action killed mid-way: test_cli_recovery.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import git_log, llmops, llmops_json

from llmops.console.presenters.host_words import cuda_cell
from llmops.rollback.lab import Lab

PY = sys.executable


def snapshot(lab: Path) -> tuple[list[str], int]:
    """What must not change when input is refused: git history and the journal's rows."""
    import sqlite3

    log = git_log(lab) if (lab / ".git").exists() else []
    rows = 0
    if (lab / "lab.db").exists():
        rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return log, rows


def test_add_list_history_rollback_json(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    added = llmops_json(
        lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w")
    )
    assert added["ok"] and added["action"]["status"] == "succeeded"
    hosts = llmops_json(lab, "host", "list")
    assert [h["spec"]["name"] for h in hosts] == ["local"]
    assert hosts[0]["facts"]["python_version"].startswith("3.")
    facts = hosts[0]["facts"]  # the text table: the Hosts view's versions and CUDA cell
    text = llmops(lab, "host", "list", env={"COLUMNS": "250"}).stdout
    assert "cuda (driver / torch)" in text and cuda_cell(facts) in text
    assert (facts["packages"].get("torch") or "-") in text
    history = llmops_json(lab, "history")
    assert [a["summary"] for a in history] == ["host local added"]
    back = llmops_json(lab, "rollback", "1")
    assert back["ok"] and back["action"]["rollback_of"] == 1
    assert llmops_json(lab, "host", "list") == []
    verify = llmops_json(lab, "history", "--verify")
    assert verify["ok"] and verify["rows"] > 4


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["host", "add", "Bad_Name", "--local"], "name"),
        (["host", "add", "h1", "--address", "10.213.1.1", "--port", "70000"], "port"),
        (["host", "add", "h1", "--address", "bad host;rm -rf /"], "address"),
        (["host", "add", "h1", "--address", "10.213.1.1", "--key", "/no/such/key"], "key"),
        (["host", "add", "h1"], "address"),
        (["host", "add", "h1", "--local", "--address", "10.213.1.1"], "local host has no address"),
        (["host", "add", "h1", "--local", "--python", "python3; reboot"], "python"),
        (["host", "remove", "ghost"], "no host named ghost"),
        (["rollback", "99"], "no action 99"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str], field: str) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "history")  # creates the lab
    before = snapshot(lab)
    done = llmops(lab, *args, check=2)
    assert field in done.stderr, done.stderr
    assert snapshot(lab) == before
    as_json = json.loads(llmops(lab, *args, "--json", check=2).stdout)
    assert as_json["ok"] is False and field in as_json["error"]


def test_unreachable_host_is_refused_as_bad_input(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "history")
    before = git_log(lab)
    done = llmops(lab, "host", "add", "far", "--address", "127.0.0.1", "--port", "9", check=2)
    assert "port: cannot reach far" in done.stderr and "refused" in done.stderr.lower()
    assert not (lab / "hosts/far.toml").exists()
    assert git_log(lab) == before  # nothing written: no action, no commit


def test_read_only_refuses_changes(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    done = llmops(lab, "--read-only", "host", "add", "local", "--local", check=2)
    assert "read-only" in done.stderr
    llmops(lab, "--read-only", "history")  # reading is fine
    assert not (lab / "hosts").exists()


def test_lock_contention_names_the_holder(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    with lab.lock.hold("pytest holding the lab"):
        done = llmops(lab.path, "--lock-wait", "0.3", "host", "add", "local", "--local", check=3)
    assert f"pid {os.getpid()}" in done.stderr and "pytest holding the lab" in done.stderr
    lab.close()


def test_corrupt_toml_is_named_with_its_line(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    (lab / "hosts/local.toml").write_text('local = true\npython = "x\n')
    done = llmops(lab, "plan", check=2)
    assert "hosts/local.toml" in done.stderr and "line 2" in done.stderr


def test_hand_edit_plan_and_apply(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    path = lab / "hosts/local.toml"
    path.write_text(path.read_text().replace(str(tmp_path / "w"), str(tmp_path / "w2")))
    plan = llmops_json(lab, "plan")
    assert plan == [
        {
            "resource": "host/local",
            "hand_edited": True,
            "steps": ["probe: connect to this machine and probe"],
        }
    ]
    applied = llmops_json(lab, "apply")
    assert applied["ok"] and "hosts/local.toml" in applied["action"]["summary"]
    assert llmops_json(lab, "plan")[0]["hand_edited"] is False


def test_cli_never_imports_heavy_libraries(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from llmops.console.cli import cli\n"
        "import llmops.console.app\n"
        "try:\n    cli(['--lab', sys.argv[1], 'history'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'vllm', 'peft', 'transformers') if m in sys.modules]\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    llmops(tmp_path / "lab", "history")  # the lab exists: history runs in full
    done = subprocess.run(
        [PY, "-c", code, str(tmp_path / "lab")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "heavy=", done.stdout


def test_help_table_matches_the_commands() -> None:
    """`llmops --help` reads each command's first help paragraph from a table (so it imports
    no command); the table must say what the commands' docstrings say."""
    from llmops.console.cli import table_drift

    assert table_drift() == []


def test_help_imports_no_command() -> None:
    """`llmops --help` (and TAB completion, which runs the CLI) imports click and the table
    only: no lab, engine, kind or their libraries."""
    code = ("import sys\nfrom llmops.console.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('llmops.rollback', "
            "'llmops.ops', 'pydantic', 'paramiko', 'sqlite_utils', 'httpx', 'git'))))\n")
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
