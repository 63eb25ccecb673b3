"""The index's record on its host (`<workdir>/indexes/<name>.json`): which collection llmops
made there and what its objects are made as (data key, the documents' fingerprint), the
snapshot per data key (object count, vector dims, a known query) the checklist compares
against, the launch hash of the instance llmops runs, and every backup it took (never
deleted). On the host, next to the instance: the console may die, the record stays."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmops.ops.kinds import hoststate
from llmops.ops.transport import Transport

FOLDER = "indexes"

FINGERPRINT = r'''
import hashlib, json, os, sys
root = sys.argv[1]
suffixes = (".txt", ".md", ".jsonl", ".pdf")
if not os.path.isdir(root):
    print(json.dumps({"ok": False, "error": f"{root} is not a folder"}))
    sys.exit(0)
files = []
for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(names):
        if name.endswith(suffixes) and not name.startswith("."):
            path = os.path.join(folder, name)
            st = os.stat(path)
            files.append([os.path.relpath(path, root), st.st_size, st.st_mtime_ns])
files.sort()
digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
print(json.dumps({"ok": True, "files": files, "fingerprint": digest}))
'''


def read(t: Transport, facts: dict[str, Any], name: str) -> dict[str, Any]:
    state = hoststate.read_state(t, facts, FOLDER, name)
    state.pop("procs", None)
    return state


def write(t: Transport, facts: dict[str, Any], name: str, record: dict[str, Any]) -> None:
    hoststate.write_state(t, facts, FOLDER, name, record)


def update(t: Transport, facts: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    record = read(t, facts, name)
    record.update(fields)
    write(t, facts, name, record)
    return record


def add_backup(t: Transport, facts: dict[str, Any], name: str, backup_id: str,
               backup: dict[str, Any]) -> None:
    record = read(t, facts, name)
    snap = record.get("snapshots", {}).get(backup.get("data_key") or "", {})
    if snap.get("probe"):
        backup = {**backup, "probe": snap["probe"]}
    record.setdefault("backups", {})[backup_id] = backup
    write(t, facts, name, record)


def snapshot(t: Transport, facts: dict[str, Any], name: str, data_key: str,
             snap: dict[str, Any]) -> None:
    record = read(t, facts, name)
    record.setdefault("snapshots", {})[data_key] = snap
    write(t, facts, name, record)


def add_eval(t: Transport, facts: dict[str, Any], name: str, entry: dict[str, Any]) -> None:
    """Keep an eval's result (newest last): per lab commit and retrieval key."""
    record = read(t, facts, name)
    record.setdefault("evals", []).append(entry)
    write(t, facts, name, record)


def last_eval(record: dict[str, Any], retrieval_key: str) -> dict[str, Any] | None:
    found = [e for e in record.get("evals", []) if e.get("retrieval_key") == retrieval_key]
    return found[-1] if found else None


def list_source(t: Transport, source: str) -> dict[str, Any]:
    """The documents under `source` on the host: [rel, size, mtime_ns] and their
    fingerprint; {"ok": False, "error"} when it is no folder."""
    done = t.python_script(FINGERPRINT, [source], timeout=120)
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {"ok": False, "error": (done.stderr or done.stdout).strip()[-300:]}


def source_fingerprint(t: Transport, source: str) -> str | None:
    listed = list_source(t, source)
    return str(listed["fingerprint"]) if listed.get("ok") else None


def short(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]
