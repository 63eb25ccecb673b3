"""Helpers for tests that drive a real lab: the CLI as a subprocess and a local host spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from clifork import run_cli

from llmops.ops.kinds.host import HostSpec
from llmops.rollback.lab import Lab, is_lab

LLMOPS = [sys.executable, "-m", "llmops.console.cli"]
FORK = os.environ.get("LLMOPS_TEST_CLI_FORK", "1") != "0"
"""Calls go through the fork server (clifork.py: the same CLI code in a fresh process, its
imports done once); LLMOPS_TEST_CLI_FORK=0 runs `python -m llmops.console.cli` each time."""
CALL_LOG = os.environ.get("LLMOPS_TEST_CLI_LOG")
"""A file to append each CLI call's seconds and words to: how much of the suite's time the CLI
subprocesses take (set it for a profiling run; off by default)."""


def llmops(
    lab: Path,
    *args: str,
    check: int | None = 0,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    create: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI on a lab; `check` is the exit code expected (None: any). The lab is
    made first, as `llmops --lab DIR init` would (the CLI refuses a missing one), unless
    `create` is off."""
    if create and not is_lab(lab):
        Lab(lab).close()
    began = time.monotonic()
    argv, environ = ["--lab", str(lab), *args], {**os.environ, **(env or {})}
    if FORK:
        done = run_cli(argv, environ, timeout)
    else:
        done = subprocess.run([*LLMOPS, *argv], capture_output=True, text=True,
                              timeout=timeout, env=environ)
    if CALL_LOG:
        with open(CALL_LOG, "a") as log:
            log.write(f"{time.monotonic() - began:.2f} {' '.join(args[:2])}\n")
    if check is not None:
        assert done.returncode == check, (
            f"exit {done.returncode} != {check}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def llmops_json(lab: Path, *args: str, check: int | None = 0) -> Any:
    return json.loads(llmops(lab, *args, "--json", check=check).stdout)


def local_host_lab(root: Path, *host_options: str) -> Path:
    """`root/lab` with host `local` added through the CLI: this interpreter, its workdir
    `root/work` beside the lab (where a test reads run folders: `root/work/run/NAME`). The lab
    most CLI tests start from, module-scoped or not; `host_options`: more `host add` options
    (`--data-dirs D`)."""
    lab = root / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(root / "work"), *host_options)
    return lab


def hand_run_lab(root: Path, state: str) -> Path:
    """`root/lab`: host `local` whose data dir is `root/data` (a one-line dataset) and run r0
    hand-edited in with `state` (never started: no trainer runs in the tests that use it)."""
    lab, data = root / "lab", root / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "hello"}\n')
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(root / "w"), "--data-dirs", str(data))
    (lab / "runs").mkdir()
    (lab / "runs" / "r0.toml").write_text(
        f'host = "local"\nbase = "/models/tiny"\ndataset = "{data}/train.jsonl"\n'
        f'state = "{state}"\n')
    opened = Lab(lab)
    try:
        opened.commit("hand edit: run r0", ["runs/r0.toml"])
    finally:
        opened.close()
    return lab


def local_spec(tmp: Path, name: str = "local", **changes: Any) -> HostSpec:
    return HostSpec.model_validate(
        {
            "name": name,
            "local": True,
            "python": sys.executable,
            "workdir": str(tmp / f"work-{name}"),
        }
        | changes
    )


def git_log(lab: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(lab), "log", "--format=%s"], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()
