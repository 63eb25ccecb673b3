"""The index kind through the real `llmops` CLI: refusals that write nothing (bad names,
an unknown or generating embedding server, ports, an API key given as a value, a key
variable not set, an instance that does not answer)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops

from llmops.rollback.lab import Lab

PY = sys.executable
KEY = "wv-3f9a1c77e2b04d5e8a6b0c1d2e3f4a5b"
"""A key value that must never reach the lab (git history, lab.db)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(lab: Path) -> tuple[list[str], int, bool]:
    """What a refusal must leave as it was: git, the journal, the indexes folder."""
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return git_log(lab), rows, (lab / "indexes").exists()


def hand_edit(path: Path, what: str, rel: str) -> None:
    opened = Lab(path)
    try:
        opened.commit(f"hand edit: {what}", [rel])
    finally:
        opened.close()


def assert_no_key(lab: Path, key: str = KEY) -> None:
    """The key is in no commit of the lab's git and nowhere in lab.db."""
    history = subprocess.run(["git", "-C", str(lab), "log", "-p", "--all"], capture_output=True,
                             text=True, check=True).stdout
    assert key not in history
    for name in ("lab.db", "lab.db-wal"):
        if (lab / name).exists():
            assert key.encode() not in (lab / name).read_bytes()


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """Host `local`, a pooling server `emb` and a generating server `gen` (hand-edited into
    the lab, never started)."""
    path = tmp_path / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(tmp_path / "w"))
    (path / "servers").mkdir()
    (path / "servers" / "emb.toml").write_text(
        'host = "local"\nmodel = "/models/minilm"\nport = 18500\n\n[args]\nrunner = "pooling"\n')
    (path / "servers" / "gen.toml").write_text(
        'host = "local"\nmodel = "/models/tiny"\nport = 18501\n')
    hand_edit(path, "servers", "servers")
    return path


def refused(lab: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The command exits 2 with a JSON refusal, and nothing was written."""
    before = snapshot(lab)
    done = llmops(lab, *args, "--json", check=2, env=env)
    answer = json.loads(done.stdout)
    assert answer["ok"] is False and answer["exit_code"] == 2 and answer["error"]
    assert snapshot(lab) == before
    return answer


def test_refusals_exit_2_and_write_nothing(lab: Path) -> None:
    port = free_port()
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--http-port", str(port), "--grpc-port", str(free_port()))
    error = refused(lab, *base, "--collection", "docs")["error"]
    assert "collection" in error
    error = refused(lab, *base[:-4], "--collection", "Docs", "--embed-server", "nosuch")["error"]
    assert "embed_server" in error and "nosuch" in error
    error = refused(lab, *base[:-6], "--embed-server", "gen", "--collection", "Docs")["error"]
    assert "embed_server" in error and "runner = pooling" in error
    error = refused(lab, "index", "create", "docs", "--host", "local", "--embed-server", "emb",
                    "--collection", "Docs", "--http-port", "70000")["error"]
    assert "http_port" in error
    error = refused(lab, "index", "create", "docs", "--host", "local", "--embed-server", "emb",
                    "--collection", "Docs", "--http-port", "18500")["error"]
    assert "http_port" in error and "server emb" in error
    error = refused(lab, *base, "--collection", "Docs", "--api-key-env", KEY)["error"]
    assert "api_key_env" in error and "NAME" in error
    error = refused(lab, *base, "--collection", "Docs", "--property", "text=int")["error"]
    assert "properties" in error
    error = refused(lab, "index", "create", "docs", "--collection", "Docs",
                    "--embed-server", "emb")["error"]
    assert "--host" in error
    assert "no index named nope" in refused(lab, "index", "show", "nope")["error"]
    assert "no index named nope" in refused(lab, "index", "query", "nope", "x")["error"]
    assert_no_key(lab)


def test_a_key_variable_not_set_and_an_instance_that_does_not_answer(lab: Path) -> None:
    port = free_port()  # nothing listens there
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--collection", "Docs", "--http-port", str(port), "--grpc-port", str(free_port()))
    error = refused(lab, *base, "--api-key-env", "LLMOPS_TEST_UNSET_KEY")["error"]
    assert "LLMOPS_TEST_UNSET_KEY is not set" in error
    error = refused(lab, *base)["error"]
    assert "http_port" in error and "did not answer" in error and f"{port}" in error
    text = llmops(lab, *base, check=2)
    assert "did not answer" in text.stderr and "Traceback" not in text.stderr
