"""Runs ON a host (`python -c <this> OP RUN_DIR ...`): reads a run's folder, changes nothing.

Stdlib only (it runs in whatever python the host has, 3.8 included). Prints one JSON object.

- `scan RUN_DIR DATASET VALIDATION HASH`: `current`, every cfg folder's facts (config,
  report, newest complete checkpoint, result, released, the newest progress record), and the
  data files' sha256 when HASH is 1 (only the plan needs them: a stale screening).
- `tail RUN_DIR`: the current cfg's latest numbers (telemetry).
- `points RUN_DIR`: every progress record of the current cfg (a loss chart).
- `report RUN_DIR`: the current cfg's screening report, or null.
- `events CFG_DIR OFFSET`: progress records written since byte OFFSET (to follow a start).
"""

import hashlib
import json
import os
import re
import sys
import time

CFG = re.compile(r"^[0-9a-f]{12}$")
TAIL_BYTES = 262144


def read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def file_sha256(path):
    if not path:
        return None
    digest = hashlib.sha256()
    try:
        with open(os.path.expanduser(path), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def records(path, tail=None):
    """Progress records in the file (the last `tail` bytes of it), oldest first."""
    found = []
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - tail) if tail else 0
            fh.seek(start)
            data = fh.read()
    except OSError:
        return found
    lines = data.decode("utf-8", "replace").splitlines()
    if start:
        lines = lines[1:]  # the first may be cut
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "event" in record:
            found.append(record)
    return found


def complete(path):
    """The trainer's own rule: trainer_state.json parses, weights and optimizer are there."""
    if read_json(os.path.join(path, "trainer_state.json")) is None:
        return False
    try:
        names = set(os.listdir(path))
    except OSError:
        return False
    weights = {"adapter_model.safetensors", "adapter_model.bin", "model.safetensors"}
    return bool(names & weights) and "optimizer.pt" in names


def newest_checkpoint(folder):
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    steps = sorted(
        (int(n[len("checkpoint-"):]) for n in names
         if n.startswith("checkpoint-") and n[len("checkpoint-"):].isdigit()),
        reverse=True,
    )
    for step in steps:
        if complete(os.path.join(folder, f"checkpoint-{step}")):
            return step
    return None


def cfg_facts(folder):
    report = read_json(os.path.join(folder, "report.json"))
    result = read_json(os.path.join(folder, "result.json"))
    recent = records(os.path.join(folder, "progress.jsonl"), TAIL_BYTES)
    last = recent[-1] if recent else {}
    step = max_steps = None
    for record in recent:
        if record.get("step") is not None:
            step = record["step"]
        if record.get("max_steps") is not None:
            max_steps = record["max_steps"]
    return {
        "config": os.path.exists(os.path.join(folder, "config.json")),
        "screened": isinstance(report, dict),
        "report_dataset_sha256": (report or {}).get("dataset_sha256"),
        "report_validation_sha256": (report or {}).get("validation_sha256"),
        "checkpoint": newest_checkpoint(os.path.join(folder, "checkpoints")),
        "done": isinstance(result, dict),
        "adapter_sha256": (result or {}).get("sha256") or (result or {}).get("adapter_sha256"),
        "adapter": os.path.exists(os.path.join(folder, "adapter", "adapter_config.json")),
        "released": os.path.exists(os.path.join(folder, "released")),
        "last_event": last.get("event"),
        "last_at": last.get("at"),
        "step": step,
        "max_steps": max_steps,
        "error": last.get("message") if last.get("event") == "error" else None,
    }


def current(run_dir):
    try:
        with open(os.path.join(run_dir, "current")) as fh:
            cfg = fh.read().strip()
    except OSError:
        return None
    return cfg if CFG.match(cfg) else None


def scan(run_dir, dataset, validation, want_hash):
    try:
        names = sorted(os.listdir(run_dir))
    except OSError:
        names = []
    cfgs = {n: cfg_facts(os.path.join(run_dir, n)) for n in names
            if CFG.match(n) and os.path.isdir(os.path.join(run_dir, n))}
    hashed = want_hash == "1" and any(c["screened"] for c in cfgs.values())
    return {
        "current": current(run_dir),
        "cfgs": cfgs,
        "dataset_sha256": file_sha256(dataset) if hashed else None,
        "validation_sha256": file_sha256(validation) if hashed else None,
        "now": time.time(),
    }


def tail(run_dir):
    """The latest numbers of the current cfg: step, loss, eval loss, rate, ETA, adapter."""
    cfg = current(run_dir)
    values = {"cfg": cfg, "now": time.time()}
    if cfg is None:
        return values
    folder = os.path.join(run_dir, cfg)
    for record in records(os.path.join(folder, "progress.jsonl"), TAIL_BYTES):
        event = record.get("event")
        for key in ("step", "max_steps", "loss", "tokens_per_s", "eta_s", "epoch"):
            if record.get(key) is not None and event in ("log", "start", "done", "checkpoint"):
                values[key] = record[key]
        if event == "eval":
            values["eval_loss"] = record.get("eval_loss")
        if event == "done":
            values["eta_s"] = 0
        values["event"] = event
        values["at"] = record.get("at")
    result = read_json(os.path.join(folder, "result.json"))
    if isinstance(result, dict):
        values["adapter_sha256"] = result.get("sha256") or result.get("adapter_sha256")
    return values


def points(run_dir):
    cfg = current(run_dir)
    found = records(os.path.join(run_dir, cfg, "progress.jsonl")) if cfg else []
    return {"cfg": cfg, "points": found}


def report(run_dir):
    cfg = current(run_dir)
    return {"cfg": cfg, "report": read_json(os.path.join(run_dir, cfg, "report.json"))
            if cfg else None}


def events(cfg_dir, offset):
    path = os.path.join(cfg_dir, "progress.jsonl")
    found, end = [], offset
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if offset > size:
                offset = 0
            fh.seek(offset)
            data = fh.read(4 << 20)
    except OSError:
        return {"records": [], "offset": 0, "now": time.time(), "size": 0}
    whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for next time
    end = offset + len(whole)
    for line in whole.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return {"records": found, "offset": end, "now": time.time(), "size": size}


def main(argv):
    op, run_dir = argv[1], os.path.expanduser(argv[2])
    if op == "scan":
        out = scan(run_dir, argv[3], argv[4], argv[5])
    elif op == "tail":
        out = tail(run_dir)
    elif op == "points":
        out = points(run_dir)
    elif op == "report":
        out = report(run_dir)
    elif op == "events":
        out = events(run_dir, int(argv[3]))
    else:
        out = {"error": f"unknown op {op!r}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
