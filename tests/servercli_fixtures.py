"""What the two server CLI walks share (a pytest plugin: `pytest_plugins =
["servercli_fixtures"]` in tests/test_server_cli.py and tests/test_server_cli_tiny.py): a lab
with host `local` per module (module-scoped, so each walk has its own lab, workdir and
servers, and no server is started twice: the demo walk starts only demo's colours, the tiny
walk only tiny), and the helpers both use to act through the CLI and read the host."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops, llmops_json, local_host_lab

from llmops.ops.kinds.server.client import VllmClient

SLOW = 600  # seconds a CLI call that starts vLLM may take on a busy shared box


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A lab with host `local` (workdir beside it); servers left at the end are taken down."""
    path = local_host_lab(tmp_path_factory.mktemp("server-cli"))
    yield path
    for row in llmops_json(path, "server", "list", check=None) or []:
        llmops(path, "server", "down", row["name"], check=None, timeout=SLOW)


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


def pid_of(lab: Path, name: str) -> int:
    """The server's pid from its run folder on the host (workdir beside the lab)."""
    proc = lab.parent / "work" / "run" / name / "proc.json"
    return int(json.loads(proc.read_text())["pid"])
