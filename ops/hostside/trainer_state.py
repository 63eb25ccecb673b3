"""Runs ON a host, beside trainer.py in <workdir>/bin/: what a run leaves on disk — its
checkpoints (which one is complete enough to resume from), the adapter and JSON files written
through a temporary name and a rename, so a kill never leaves half a file that looks whole."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

KEEP_CHECKPOINTS = 3


def checkpoint_step(path: str) -> int | None:
    name = os.path.basename(path.rstrip("/"))
    tail = name[len("checkpoint-"):] if name.startswith("checkpoint-") else ""
    return int(tail) if tail.isdigit() else None


def complete(path: str) -> bool:
    """Saved to the end: trainer_state.json (written last) parses, weights and optimizer exist."""
    try:
        with open(os.path.join(path, "trainer_state.json")) as fh:
            json.load(fh)
    except (OSError, ValueError):
        return False
    names = set(os.listdir(path))
    weights = {"adapter_model.safetensors", "adapter_model.bin", "model.safetensors"}
    return bool(names & weights) and "optimizer.pt" in names


def newest_checkpoint(folder: str) -> str | None:
    """The newest complete checkpoint; incomplete ones (a kill mid-save) are removed."""
    if not os.path.isdir(folder):
        return None
    found = sorted((step, os.path.join(folder, name)) for name in os.listdir(folder)
                   if (step := checkpoint_step(name)) is not None)
    for _step, path in reversed(found):
        if complete(path):
            return path
        print(f"removing incomplete checkpoint {path}", flush=True)
        shutil.rmtree(path, ignore_errors=True)
    return None


def save_adapter(model: Any, tok: Any, out: str) -> str:
    """adapter/ via a temporary folder and a rename, so a half-saved adapter never shows."""
    final = os.path.join(out, "adapter")
    tmp = os.path.join(out, f"adapter.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
