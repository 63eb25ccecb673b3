"""Runs ON a host (`python adapter_tools.py sha PATH` | `merge BASE ADAPTER OUT`) with its python.

`sha` names an adapter by its content, so the adapter store (<workdir>/adapters/<sha256>/)
and a run's result.json agree on one id: sha256 over the sorted relative paths and contents
of the files that make the adapter (adapter_config.json, the weights, tokenizer files), never
README.md or checkpoints, which change without changing what the adapter does. trainer.py
imports `adapter_sha256` from this file (both are copied to <workdir>/bin/).

`merge` folds an adapter into its base (peft merge_and_unload, in float32 on the CPU so the
sum is exact, saved in the base's own dtype) and writes a plain model folder vLLM serves
without LoRA. OUT must not hold anything yet: merged models are never overwritten.

Stdlib at import time; torch/transformers/peft only inside `merge`. The last stdout line is
one JSON object; a failure prints {"ok": false, "error": ...} and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from typing import Any

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "vocab.json", "vocab.txt", "merges.txt",
    "tokenizer.model", "spiece.model",
)
"""The files that decide what an adapter does; anything else in the folder is not hashed."""


def hashed_files(folder: str) -> list[str]:
    """Relative paths (sorted, '/'-separated) of the files the sha covers."""
    keep = set(ADAPTER_FILES) | set(TOKENIZER_FILES)
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith("checkpoint") and d != "checkpoints"]
        for name in names:
            if name in keep:
                found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


def adapter_sha256(folder: str) -> str:
    """sha256 over each hashed file's relative path, size and bytes, in sorted order."""
    files = hashed_files(folder)
    if "adapter_config.json" not in [f.rsplit("/", 1)[-1] for f in files]:
        raise FileNotFoundError(f"{folder} has no adapter_config.json: not an adapter folder")
    digest = hashlib.sha256()
    for rel in files:
        path = os.path.join(folder, rel)
        digest.update(f"{rel}\0{os.path.getsize(path)}\0".encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def answer(data: dict[str, Any], code: int = 0) -> None:
    print(json.dumps(data), flush=True)
    sys.exit(code)


def merge(base: str, adapter: str, out: str) -> dict[str, Any]:
    """merge_and_unload in float32 on the CPU; saved via a temporary folder, then renamed."""
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out = os.path.abspath(os.path.expanduser(out))
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FileExistsError(f"{out} already exists: merged models are never overwritten")
    began = time.monotonic()
    saved_dtype = getattr(AutoConfig.from_pretrained(base), "dtype", None) or torch.float32
    if isinstance(saved_dtype, str):
        saved_dtype = getattr(torch, saved_dtype, torch.float32)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    if isinstance(saved_dtype, torch.dtype) and saved_dtype != torch.float32:
        merged = merged.to(saved_dtype)
    has_tokenizer = any(os.path.exists(os.path.join(adapter, n)) for n in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(adapter if has_tokenizer else base)
    tmp = f"{out}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if os.path.isdir(out):
            os.rmdir(out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"ok": True, "path": out, "seconds": round(time.monotonic() - began, 3)}


def main(argv: list[str]) -> None:
    op = argv[1] if len(argv) > 1 else ""
    try:
        if op == "sha" and len(argv) == 3:
            answer({"ok": True, "sha256": adapter_sha256(os.path.expanduser(argv[2]))})
        if op == "merge" and len(argv) == 5:
            answer(merge(argv[2], os.path.expanduser(argv[3]), argv[4]))
    except Exception as exc:  # noqa: BLE001 - the caller reads the reason from the last line
        answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}, 1)
    answer({"ok": False, "error": "usage: adapter_tools.py sha PATH | merge BASE ADAPTER OUT"}, 2)


if __name__ == "__main__":
    main(sys.argv)
