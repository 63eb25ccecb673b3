"""Shared helpers for fine-tuning tests: the tiny model made once per session, rows on disk,
and the host-side scripts run as a host runs them (copied into a bin/ folder, own python)."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from llmops.ops.kinds.run.layout import SCRIPTS

HOSTSIDE = Path(str(files("llmops.ops.hostside")))

SENTENCES = [
    "The operator starts a server and watches the tokens flow.",
    "A rollback brings the lab back to the state it was in before.",
    "Every action is committed to git and journalled before it runs.",
    "Blue and green servers take turns being the live one.",
]


@cache
def tiny_model_dir() -> Path:
    """The tests' tiny Llama (ops/hostside/tinymodel.py), made once per session (~5 s)."""
    root = Path(tempfile.mkdtemp(prefix="llmops-tiny-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    out = root / "tiny"
    subprocess.run([sys.executable, str(HOSTSIDE / "tinymodel.py"), str(out)], check=True,
                   capture_output=True, timeout=300)
    assert (out / "config.json").is_file()
    return out


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Rows as jsonl (one JSON object a line), parents made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Whole JSON lines of a file (progress.jsonl, data/train.jsonl); [] when it is not there.
    A last line still being written (no newline yet) is left for the next read."""
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in complete if line.strip()]


def host_bin(root: Path) -> Path:
    """The host-side scripts copied into root/bin/, as the run kind puts them on a host."""
    target = root / "bin"
    target.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        if (HOSTSIDE / name).exists():
            shutil.copy(HOSTSIDE / name, target / name)
    return target


def text_rows(n: int) -> list[dict[str, str]]:
    return [{"text": SENTENCES[i % len(SENTENCES)]} for i in range(n)]


def trainer_config(out: Path, train: Path, eval_file: Path | None = None,
                   **fields: Any) -> Path:
    """A trainer config.json in out/ for the tiny model: small and quick unless told."""
    cfg: dict[str, Any] = {
        "base": str(tiny_model_dir()), "train_file": str(train),
        "eval_file": str(eval_file) if eval_file else None, "format": "text",
        "text_field": "text", "prompt_field": None, "completion_field": None,
        "messages_field": None, "r": 8, "alpha": 16, "dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"], "qlora": False, "lr": 1e-2, "epochs": 1.0,
        "max_steps": 20, "batch_size": 4, "grad_accum": 1, "max_seq_len": 64, "eval_steps": 5,
        "save_steps": 5, "logging_steps": 5, "early_stopping_patience": None, "seed": 1,
        "output_dir": str(out), "use_cpu": True, "spec_hash": "test",
    }
    cfg.update(fields)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def wait_for_line(path: Path, event: str, proc: subprocess.Popen[Any],
                  timeout: float = 300) -> dict[str, Any]:
    """The first progress line of this event; fails if the process ends without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in read_lines(path):
            if line["event"] == event:
                return line
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited {proc.returncode} before a {event} line: "
                                 f"{read_lines(path)[-3:]}")
        time.sleep(0.01)
    raise AssertionError(f"no {event} line in {timeout}s")
