"""Runs ON a host, beside adapter_tools.py in <workdir>/bin/: the adapter store's copies.

The store (<workdir>/adapters/<sha256>/) holds one content-addressed copy of each adapter
version a server was given, never deleted, so a rollback reloads an earlier version by its
sha even when its run or path is gone. A copy goes to a hidden folder first and is renamed
into place only once its files hash to the sha asked for: a store folder named by a sha
always holds that sha (a half-done copy is never mistaken for one).

    copy SRC STORE SHA        copy an adapter folder's hashed files into STORE/SHA
    adopt INCOMING STORE SHA  files put there from another host: verify, rename to STORE/SHA
    files SRC                 the hashed files of a folder (what another host must fetch)
    find-run RUN_DIR SHA      the adapter folder of a run's training config that hashes to SHA
    inspect REQUEST_JSON      {"store": path, "merge_to": path|null, "verify": bool}: the
                              store copy's sha (hashed, or its name if not verify), merge_to's state

The last stdout line is one JSON object; a failure prints {"ok": false, "error": ...}, exit 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adapter_tools import adapter_sha256, hashed_files  # noqa: E402 - beside this file

LEDGER = "placed.log"
"""One sha per line for every copy placed: a copy gone from the store is told from one never
made (a deploy killed before its copy leaves nothing to keep)."""
MERGE_MARK = "llmops-merge.json"
"""Written into a merged folder: which adapter sha and base it was made from."""


def answer(data: dict[str, Any], code: int = 0) -> None:
    print(json.dumps(data), flush=True)
    sys.exit(code)


def sha_or_none(folder: str) -> str | None:
    try:
        return adapter_sha256(folder) if os.path.isdir(folder) else None
    except (OSError, ValueError):
        return None


def place(incoming: str, store: str, sha: str, began: float) -> dict[str, Any]:
    """Verify the incoming folder's sha, then rename it into the store (atomic)."""
    got = adapter_sha256(incoming)
    if got != sha:
        shutil.rmtree(incoming, ignore_errors=True)
        raise ValueError(f"the copy hashes to {got}, not {sha}: the source changed or is not it")
    target = os.path.join(store, sha)
    if os.path.isdir(target) and sha_or_none(target) == sha:
        shutil.rmtree(incoming, ignore_errors=True)
        return {"ok": True, "path": target, "existing": True, "seconds": 0.0}
    if os.path.exists(target):  # a broken copy under the sha's name: set it aside, never delete
        os.replace(target, f"{target}.broken-{int(time.time())}")
    os.replace(incoming, target)
    with open(os.path.join(store, LEDGER), "a") as fh:  # what the store ever held, by sha
        fh.write(sha + "\n")
    size = sum(os.path.getsize(os.path.join(target, f)) for f in hashed_files(target))
    return {"ok": True, "path": target, "existing": False, "bytes": size,
            "seconds": round(time.monotonic() - began, 3)}


def copy(src: str, store: str, sha: str) -> dict[str, Any]:
    began = time.monotonic()
    target = os.path.join(store, sha)
    if sha_or_none(target) == sha:
        return {"ok": True, "path": target, "existing": True, "seconds": 0.0}
    files = hashed_files(src)
    if not files:
        raise FileNotFoundError(f"{src} holds no adapter files")
    os.makedirs(store, mode=0o700, exist_ok=True)
    incoming = os.path.join(store, f".incoming-{sha}-{os.getpid()}")
    shutil.rmtree(incoming, ignore_errors=True)
    for rel in files:
        dest = os.path.join(incoming, rel)
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), dest)
    return place(incoming, store, sha, began)


def find_run(run_dir: str, sha: str) -> dict[str, Any]:
    """The current config first, then every other: a rollback may want an older config's."""
    try:
        with open(os.path.join(run_dir, "current")) as fh:
            current = fh.read().strip()
    except OSError:
        current = ""
    names = sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
    cfgs = [current] + [n for n in names if n != current and len(n) == 12]
    seen: dict[str, str | None] = {}
    for cfg in [c for c in cfgs if c]:
        try:
            with open(os.path.join(run_dir, cfg, "result.json")) as fh:
                result = json.load(fh)
        except (OSError, ValueError):
            result = {}
        folder = result.get("adapter") or os.path.join(run_dir, cfg, "adapter")
        got = result.get("sha256") or sha_or_none(folder)
        seen[cfg] = got
        if got == sha and os.path.isdir(folder):
            return {"ok": True, "path": folder, "cfg": cfg, "current": cfg == current,
                    "probe_prompt": result.get("probe_prompt")}
    return {"ok": False, "current": current or None, "current_sha": seen.get(current),
            "error": f"no training config of {run_dir} has an adapter with sha {sha}"}


def inspect(request: dict[str, Any]) -> dict[str, Any]:
    folder = request["store"]
    if request.get("verify", True):
        found: dict[str, Any] = {"ok": True, "store_sha": sha_or_none(folder)}
    else:  # a status poll: the folder's name, when it holds an adapter
        named = os.path.isfile(os.path.join(folder, "adapter_config.json"))
        found = {"ok": True, "store_sha": os.path.basename(folder) if named else None}
    out = request.get("merge_to")
    if out:
        found["merged"] = os.path.isfile(os.path.join(out, "config.json"))
        found["merge_exists"] = os.path.exists(out) and bool(
            not os.path.isdir(out) or os.listdir(out))
        try:
            with open(os.path.join(out, MERGE_MARK)) as fh:
                found["merged_sha"] = json.load(fh).get("sha256")
        except (OSError, ValueError):
            found["merged_sha"] = None
    return found


def main(argv: list[str]) -> None:
    op, args = (argv[1] if len(argv) > 1 else ""), argv[2:]
    try:
        if op == "copy" and len(args) == 3:
            answer(copy(*args))
        if op == "adopt" and len(args) == 3:
            answer(place(args[0], args[1], args[2], time.monotonic()))
        if op == "files" and len(args) == 1:
            answer({"ok": True, "files": hashed_files(args[0]), "sha256": adapter_sha256(args[0])})
        if op == "find-run" and len(args) == 2:
            found = find_run(*args)
            answer(found, 0 if found["ok"] else 1)
        if op == "inspect" and len(args) == 1:
            answer(inspect(json.loads(args[0])))
    except Exception as exc:  # noqa: BLE001 - the caller reads the reason from the last line
        answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}, 1)
    answer({"ok": False, "error": "usage: adapter_store.py copy|adopt|files|find-run|inspect"}, 2)


if __name__ == "__main__":
    main(sys.argv)
