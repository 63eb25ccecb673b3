"""`llmops adapter ...` at the CLI: refusals exit 2 with nothing written (no source, two
sources, a server without runtime LoRA, a bad path), `--json` shapes, and name completion.
Deploying into a real vLLM server and rolling back by sha is the adapter kind's own test."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops, llmops_json
from test_cli_spec import complete

from llmops.console.presenters.adapter_words import adapter_versions, versions_text
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.rollback.lab import Lab

PY = sys.executable


def snapshot(lab: Path) -> tuple[list[str], int, bool]:
    """What a refusal must leave as it was: git, the journal, the adapters folder."""
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return git_log(lab), rows, (lab / "adapters").exists()


def hand_edit(path: Path, what: str, rel: str) -> None:
    opened = Lab(path)
    try:
        opened.commit(f"hand edit: {what}", [rel])
    finally:
        opened.close()


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """Host `local` and a server `plain` (hand-edited into the lab, never started): LoRA off."""
    path = tmp_path / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(tmp_path / "w"))
    (path / "servers").mkdir()
    (path / "servers" / "plain.toml").write_text('host = "local"\nmodel = "/models/tiny"\n')
    hand_edit(path, "server plain", "servers/plain.toml")
    return path


def adapter_folder(tmp_path: Path) -> Path:
    """An adapter folder as peft saves one (the sha covers these files' bytes)."""
    folder = tmp_path / "adapter-a"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16,
                                                            "peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    return folder


def refused(lab: Path, *args: str) -> dict[str, Any]:
    """The command exits 2 with a JSON refusal, and nothing was written."""
    before = snapshot(lab)
    answer = json.loads(llmops(lab, *args, "--json", check=2).stdout)
    assert answer["ok"] is False and answer["exit_code"] == 2 and answer["error"]
    assert snapshot(lab) == before
    return answer


def test_refusals_exit_2_and_write_nothing(lab: Path, tmp_path: Path) -> None:
    error = refused(lab, "adapter", "deploy", "a1", "--server", "plain")["error"]
    assert "--run R or --path P" in error
    error = refused(lab, "adapter", "deploy", "a1", "--run", "r1", "--path", "/x",
                    "--server", "plain")["error"]
    assert "one of them" in error
    assert "--server" in refused(lab, "adapter", "deploy", "a1", "--path", "/x")["error"]
    assert "path" in refused(lab, "adapter", "deploy", "a1", "--path", "rel/dir",
                             "--server", "plain")["error"]
    assert "no adapter named a1" in refused(lab, "adapter", "show", "a1")["error"]
    assert "no adapter named a1" in refused(lab, "adapter", "merge", "a1", "--into",
                                            "/tmp/m")["error"]
    # a real folder on the host, a server without runtime LoRA: refused naming the fix
    folder = adapter_folder(tmp_path)
    error = refused(lab, "adapter", "deploy", "a1", "--path", str(folder),
                    "--server", "plain")["error"]
    assert "runtime_lora" in error and "plain" in error
    text = llmops(lab, "adapter", "deploy", "a1", "--server", "plain", check=2)
    assert "--run R or --path P" in text.stderr and not text.stdout


def test_json_shapes_and_completion(lab: Path) -> None:
    assert llmops_json(lab, "adapter", "list") == []
    (lab / "adapters").mkdir()
    sha = "ab" * 32
    (lab / "adapters" / "a1.toml").write_text(
        f'path = "/srv/adapters/a1"\nhost = "local"\nsha256 = "{sha}"\n')
    hand_edit(lab, "adapter a1", "adapters/a1.toml")
    [row] = llmops_json(lab, "adapter", "list")
    assert {"name", "server", "source", "sha", "sha256", "state", "loaded",
            "load_seconds"} <= set(row)
    assert row["name"] == "a1" and row["sha"] == sha[:12] and row["loaded"] is False
    shown = llmops_json(lab, "adapter", "show", "a1")
    assert shown["spec"]["sha256"] == sha and shown["state"]
    [version] = shown["versions"]
    assert version["sha256"] == sha and version["current"] is True
    assert version["commits"][0]["summary"] == "hand edit: adapter a1"
    assert "a1" in llmops(lab, "adapter", "show", "a1").stdout
    assert complete(lab, f"llmops --lab {lab} adapter undeploy ") == ["a1"]
    assert complete(lab, f"llmops --lab {lab} adapter deploy a2 --server ") == ["plain"]


def test_versions_grouped_by_sha_newest_first() -> None:
    a, b = "a" * 64, "b" * 64
    history = [  # the door's answer: one entry per commit, newest first
        {"sha256": a, "server": "s1", "source": "run r1", "commit": "c4", "summary": "back"},
        {"sha256": b, "server": "s1", "source": "run r1", "commit": "c3", "summary": "B"},
        {"sha256": None, "server": None, "source": None, "commit": "c2", "summary": "gone"},
        {"sha256": a, "server": "s0", "source": "run r1", "commit": "c1", "summary": "A"},
    ]
    current = AdapterSpec(name="x", run="r1", server="s1", sha256=a)
    versions = adapter_versions(history, current)
    assert [v["short"] for v in versions] == [a[:12], b[:12]]
    assert versions[0]["servers"] == ["s1", "s0"] and versions[0]["current"]
    assert not versions[1]["current"] and len(versions[0]["commits"]) == 2
    plain = versions_text(versions, "deployed").plain
    assert f"● {a[:12]}  on s1, s0 (deployed now)" in plain and b[:12] in plain
