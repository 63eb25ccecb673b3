"""`llmops run ...` at the CLI: refusals exit 2 with nothing written (a bad screening rule or
choice, a bad field, a missing option, a dataset outside the host's data dirs, stopping what
is stopped), the `--json` shapes of list, show and report, and name completion. A real run
trained through the engine is tests/test_console_runs.py's (the view) and the run kind's."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import click
import pytest
from finetune_fixtures import tiny_model_dir
from labtools import git_log, hand_run_lab, llmops, llmops_json
from test_cli_spec import complete

from llmops.console.cli.spec_options import given_fields
from llmops.ops.kinds.run.spec import RunSpec


def snapshot(lab: Path) -> tuple[list[str], int, list[str]]:
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return git_log(lab), rows, sorted(p.name for p in (lab / "runs").glob("*.toml"))


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """Host `local` whose data dir is tmp/data (with a dataset), and run r0 hand-edited in,
    stopped (never started: no trainer runs in these tests)."""
    return hand_run_lab(tmp_path, "stopped")


def refused(lab: Path, *args: str) -> str:
    """Exit 2 with a JSON refusal and nothing written; returns the error."""
    before = snapshot(lab)
    answer = json.loads(llmops(lab, *args, "--json", check=2).stdout)
    assert answer["ok"] is False and answer["exit_code"] == 2
    assert snapshot(lab) == before
    return str(answer["error"])


def start(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "start", "r1", "--host", "local", "--base", "/models/tiny", "--dataset",
            str(tmp_path / "data" / "train.jsonl"), *extra]


def test_refusals_exit_2_and_write_nothing(lab: Path, tmp_path: Path) -> None:
    error = refused(lab, *start(tmp_path, "--screening", "secrets=drop"))
    assert "--screening" in error and "'secrets' is not one of" in error
    assert "give one of drop, keep, redact" in refused(
        lab, *start(tmp_path, "--screening", "secret=delete"))
    assert "r:" in refused(lab, *start(tmp_path, "--r", "0"))
    assert "target_modules" in refused(lab, *start(tmp_path, "--target-modules", "q_proj,a b"))
    assert "--dataset" in refused(lab, "run", "start", "r1", "--host", "local", "--base", "/m")
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text('{"text": "hi"}\n')
    error = refused(lab, "run", "start", "r1", "--host", "local", "--base",
                    str(tiny_model_dir()), "--dataset", str(outside))
    assert "dataset" in error and "data dir" in error, error
    error = refused(lab, *start(tmp_path, "--revision", "1.2;id"))  # a path base, a bad TAG
    assert "revision" in error and "not a hub revision" in error, error
    error = refused(lab, *start(tmp_path, "--revision", "1.2"))
    assert "revision" in error and "goes with a hub id base" in error, error
    error = refused(lab, "run", "start", "r1", "--host", "local", "--base", "org/m:$(id)",
                    "--dataset", str(tmp_path / "data" / "train.jsonl"))
    assert "base" in error and "the revision after ':' must be" in error, error
    assert "already" in refused(lab, "run", "stop", "r0")
    assert "no run named nope" in refused(lab, "run", "resume", "nope")
    plain = llmops(lab, "run", "start", "r1", "--screening", "secret", check=2)
    assert "--screening" in plain.stderr and "KEY=VALUE" in plain.stderr and not plain.stdout
    done = llmops(lab, "--read-only", "run", "stop", "r0", check=2)
    assert "read-only" in done.stderr


def test_json_shapes_and_completion(lab: Path) -> None:
    [row] = llmops_json(lab, "run", "list")
    assert {"name", "host", "base", "dataset", "state", "cfg", "step", "max_steps", "loss",
            "eval_loss", "tokens_per_s", "eta_s", "adapter"} <= set(row)
    assert row["name"] == "r0" and row["step"] is None
    shown = llmops_json(lab, "run", "show", "r0")
    assert set(shown) == {"spec", "state", "progress", "points"}
    assert shown["spec"]["state"] == "stopped" and shown["points"] == []
    assert {"step", "max_steps", "loss", "eval_loss", "eta_s", "ended",
            "fraction"} <= set(shown["progress"])
    assert llmops_json(lab, "run", "report", "r0") is None
    assert "no screening report yet" in llmops(lab, "run", "report", "r0").stdout
    assert complete(lab, f"llmops --lab {lab} run resume ") == ["r0"]
    assert complete(lab, f"llmops --lab {lab} run start r9 --host ") == ["local"]


def test_lists_and_choices_read_from_the_command_line() -> None:
    values: dict[str, Any] = given_fields(RunSpec, {
        "target_modules": "q_proj, v_proj,,o_proj", "screening": "secret=keep,email=drop",
        "gpus": "0,1", "r": 4})
    assert values == {"target_modules": ["q_proj", "v_proj", "o_proj"],
                      "screening": {"secret": "keep", "email": "drop"}, "gpus": [0, 1], "r": 4}
    spec = RunSpec.model_validate({"name": "x", "host": "h", "base": "/m",
                                   "dataset": "/d/t.jsonl", **values})
    assert spec.screening["injection"] == "drop" and spec.screening["secret"] == "keep"
    with pytest.raises(click.BadParameter, match="is not KEY=VALUE"):
        given_fields(RunSpec, {"screening": "secret"})
