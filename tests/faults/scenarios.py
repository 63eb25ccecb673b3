"""The kill-at-every-step scenarios, one per resource kind (issue 13, item 1).

Every kind in the registry (`rollback/kinds.KINDS`) declares one here: a cheap action that
creates a resource (so its before-state is "absent" and a rollback is a removal, with no
second vLLM start), the setup it needs in the lab, and the engine points its action reaches.
`tests/test_fault_kill.py` fails while a kind of the registry has no scenario, so a new kind
is covered by declaring its own.

`setup(root, lab)` prepares the lab and returns the CLI arguments of the action; it runs once
per kind (a module fixture), the scenario's points then run one after another on that lab:
each rollback returns it to the before-state the next point starts from.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finetune_fixtures import text_rows, tiny_model_dir, write_rows
from labtools import llmops

PY = sys.executable
CHEAP = ("after-started", "after-commit")
"""Points before any host is touched, one each side of the commit: every kind runs them (the
host scenario runs every other point too)."""


@dataclass(frozen=True)
class Scenario:
    kind: str
    setup: Callable[[Path, Path], list[str]]
    mid: tuple[str, ...]
    """Points inside the reconcile (`step:N`: after the Nth step) this kind's action reaches."""
    late: tuple[str, ...] = ()
    """Points after the reconcile (`before-checks`, `before-succeeded`): run where cheap."""
    failing: Callable[[Path, Path], list[str]] | None = None
    """An action of this kind that fails mid-reconcile, for the revert path's points."""
    revert_points: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())
    """Real parts the scenario needs (`vllm`)."""

    @property
    def points(self) -> tuple[str, ...]:
        return CHEAP + self.mid + self.late


def local_host(root: Path, lab: Path, **extra: str) -> None:
    args = ["host", "add", "local", "--local", "--python", PY, "--workdir", str(root / "work")]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    llmops(lab, *args)


# -- host: a local host add (the probe is its one step) -------------------------------------
def host_setup(root: Path, lab: Path) -> list[str]:
    return ["host", "add", "h1", "--local", "--python", PY, "--workdir", str(root / "work-h1")]


def host_failing(root: Path, lab: Path) -> list[str]:
    """A host whose python fails: the probe step fails and the action is reverted."""
    broken = root / "broken-python"
    broken.write_text("#!/bin/sh\necho 'no python here' >&2\nexit 3\n")
    broken.chmod(0o755)
    return ["host", "add", "h2", "--local", "--python", str(broken), "--workdir",
            str(root / "work-h2")]


# -- server: the tiny model, eager; step 2 is its start (vLLM launched, not yet ready) --------
def free_port() -> int:
    """A port nobody listens on now (the shared box runs other engineers' servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_setup(root: Path, lab: Path) -> list[str]:
    local_host(root, lab)
    return ["server", "up", "f1", "--host", "local", "--model", str(tiny_model_dir()),
            "--port", str(free_port()), "--dtype", "float32", "--max-model-len", "256",
            "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true"]


# -- run: a few-step tiny training; step 5 is the trainer's start ----------------------------
def run_setup(root: Path, lab: Path) -> list[str]:
    data = root / "data"
    local_host(root, lab, data_dirs=f"{data / 'training'},{data / 'validation'}")
    rows = write_rows(data / "training" / "rows.jsonl", text_rows(24))
    return ["run", "start", "r1", "--host", "local", "--base", str(tiny_model_dir()),
            "--dataset", str(rows), "--max-steps", "4", "--save-steps", "2", "--eval-steps",
            "2", "--logging-steps", "1", "--eval-split", "0.1", "--batch-size", "4",
            "--max-seq-len", "32", "--seed", "1"]


SCENARIOS: dict[str, Scenario] = {
    "host": Scenario(
        "host", host_setup, mid=("after-write", "after-committed", "step:1"),
        late=("before-checks", "before-succeeded"),
        failing=host_failing, revert_points=("revert-after-commit", "before-failed"),
    ),
    "server": Scenario("server", server_setup, mid=("step:2",), needs=("vllm",)),
    "run": Scenario("run", run_setup, mid=("step:5",)),
}
"""Filled in by kind; `adapter` and `index` are declared in tests/faults/heavy.py."""
