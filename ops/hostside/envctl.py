"""Host environments, run ON a host with its python: `python envctl.py OP 'JSON'` prints one
JSON object as its last line. Stdlib only (it runs before any venv exists).

Layout under ROOT (<workdir>/envs/<env name>):
  venvs/<set>/            one venv per pinned set; `.llmops-complete` marks a finished build
  manifests/<sha256>.txt  `pip freeze` texts, content-addressed (never deleted)
  sets/<set>.json         the manifest each set was built to, and the one recorded last
  jobs/<set>.json         a build's job; jobs/<set>.result.json its outcome
The venv path the operator uses is a symlink to venvs/<set>, replaced atomically.
`build` is the long one, run detached (procctl): pip's output is its log.
The parts beside it (sent with it, every envctl*.py): envctl_lib.py (paths, pip, freeze,
manifests), envctl_check.py (the checklist), envctl_build.py (the build).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # inside the llmops package here (tests, the console) its
    sys.path.insert(0, HERE)  # parts are beside it; on a host they are bundled with it

from envctl_build import op_build  # noqa: E402
from envctl_check import op_check, pip_check_verdict  # noqa: E402
from envctl_lib import (  # noqa: E402
    MARK,
    NOT_FROZEN,
    canon,
    expand,
    freeze,
    host_pip_ok,
    link_set,
    manifest_text,
    read_json,
    read_manifest,
    site_packages,
    store_manifest,
    write_json,
)

__all__ = ["op_build", "op_check", "pip_check_verdict"]


def answer(data, code=0):
    print(json.dumps(data), flush=True)
    sys.exit(code)


def op_inspect(req):
    root, venv = expand(req["root"]), expand(req["venv"])
    current, foreign = link_set(root, venv)
    kept, incomplete = [], []
    venvs = os.path.join(root, "venvs")
    for entry in sorted(os.listdir(venvs)) if os.path.isdir(venvs) else []:
        (kept if os.path.exists(os.path.join(venvs, entry, MARK)) else incomplete).append(entry)
    sets = {}
    for entry in sorted(os.listdir(os.path.join(root, "sets"))) \
            if os.path.isdir(os.path.join(root, "sets")) else []:
        record = read_json(os.path.join(root, "sets", entry)) or {}
        sha = record.get("manifest")
        if entry.endswith(".json") and sha and \
                os.path.exists(os.path.join(root, "manifests", f"{sha}.txt")):
            sets[entry[:-5]] = sha
    found = {"ok": True, "link": current, "foreign": foreign, "kept": kept,
             "incomplete": incomplete, "manifests": sets, "venv": venv, "root": root}
    if req.get("freeze") and current:
        found["freeze"] = quick_freeze(os.path.join(venvs, current))
        found["torch_cuda"] = torch_cuda(os.path.join(venvs, current))
        if current in sets:
            found["manifest_lines"] = read_manifest(root, sets[current])
    return found


QUICK = ("import importlib.metadata as m, json\n"
         "print(json.dumps(sorted({f\"{d.metadata['Name']}=={d.version}\" for d in "
         "m.distributions() if d.metadata['Name']})))\n")


def quick_freeze(venv_dir):
    """What the venv holds by its metadata (a status poll: ~50 ms, not pip's ~1 s)."""
    done = subprocess.run([os.path.join(venv_dir, "bin", "python"), "-I", "-c", QUICK],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return None
    lines = [x for x in json.loads(done.stdout) if canon(x.split("==")[0]) not in NOT_FROZEN]
    return sorted(lines, key=lambda line: canon(line.split("==")[0]))


def torch_cuda(venv_dir):
    """torch.version.cuda of the venv's torch, read from torch/version.py (no import: torch
    takes seconds): "12.8", "none" for a CPU build, None without torch."""
    site = site_packages(venv_dir)
    try:
        with open(os.path.join(site or "", "torch", "version.py")) as fh:
            found = re.search(r"^cuda\b[^=\n]*=\s*['\"]?([\w.]+)", fh.read(), re.M)
    except OSError:
        return None
    value = found.group(1) if found else "None"
    return "none" if value == "None" else value


def op_snapshot(req):
    """Record the freeze of what the venv path points at now, before anything changes."""
    root, venv = expand(req["root"]), expand(req["venv"])
    current, _foreign = link_set(root, venv)
    if current is None:
        return {"ok": True, "set": None}
    lines = freeze(os.path.join(root, "venvs", current))
    sha = store_manifest(root, lines)
    path = os.path.join(root, "sets", f"{current}.json")
    record = read_json(path, {})
    drifted = record.get("manifest") not in (None, sha)  # the set's manifest stays the built
    record.update(snapshot=sha, snapshot_at=time.time())  # one: what its pins resolved to
    write_json(path, record)
    return {"ok": True, "set": current, "manifest": sha, "lines": lines, "drifted": drifted}


def op_switch(req):
    root, venv, target = expand(req["root"]), expand(req["venv"]), req["set"]
    folder = os.path.join(root, "venvs", target)
    if not os.path.exists(os.path.join(folder, MARK)):
        return {"ok": False, "error": f"{folder} is not a finished venv"}
    before, foreign = link_set(root, venv)
    if foreign:
        return {"ok": False, "error": f"{venv} exists and is not a venv llmops manages"}
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    tmp = f"{venv}.llmops-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    began = time.monotonic()
    os.symlink(folder, tmp)
    os.replace(tmp, venv)
    return {"ok": True, "from": before, "to": target,
            "seconds": round(time.monotonic() - began, 6)}


def op_prune(req):
    root, venv = expand(req["root"]), expand(req["venv"])
    current, _ = link_set(root, venv)
    keep = set(req.get("keep", [])) | ({current} if current else set())
    venvs, removed = os.path.join(root, "venvs"), []
    for entry in sorted(os.listdir(venvs)) if os.path.isdir(venvs) else []:
        if entry not in keep:
            shutil.rmtree(os.path.join(venvs, entry), ignore_errors=True)
            removed.append(entry)
    return {"ok": True, "removed": removed}


def op_remove(req):
    """Unlink the venv path; the venvs too when asked (the manifests stay)."""
    root, venv = expand(req["root"]), expand(req["venv"])
    current, foreign = link_set(root, venv)
    if current is not None:
        os.unlink(venv)
    removed = []
    if req.get("venvs"):
        removed = op_prune({"root": root, "venv": venv, "keep": []})["removed"]
    return {"ok": True, "unlinked": current, "removed": removed, "foreign": foreign}


def op_platform(req):
    """What `pip download` needs to fetch wheels for this python on this machine."""
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, "cp")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    machine = os.uname().machine
    platforms = []
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    if libc and libc.startswith("glibc "):
        major, minor = (int(x) for x in libc.split()[1].split(".")[:2])
        platforms += [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
        for legacy, floor in (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5)):
            if minor >= floor:
                platforms.append(f"{legacy}_{machine}")
    platforms.append(f"linux_{machine}")
    return {"ok": True, "python_version": version, "implementation": impl,
            "abi": f"{impl}{version.replace('.', '')}", "platforms": platforms,
            "python": sys.executable, "host_pip": host_pip_ok()}


def op_wheels(req):
    folder = expand(req["dir"])
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return {"ok": True, "wheels": {n: os.path.getsize(os.path.join(folder, n))
                                   for n in names if n.endswith(".whl")}}


def op_manifest(req):
    root = expand(req["root"])
    try:
        return {"ok": True, "lines": read_manifest(root, req["sha"])}
    except OSError as exc:
        return {"ok": False, "error": f"no manifest {req['sha'][:12]} on this host: {exc}"}


def op_put_manifest(req):
    """A manifest this host lost, back from the lab's journal: written only when its lines
    hash to the sha256 it is named by; the set's record points at it again."""
    root, lines, sha = expand(req["root"]), [str(x) for x in req["lines"]], req["sha"]
    if hashlib.sha256(manifest_text(lines).encode()).hexdigest() != sha:
        return {"ok": False, "error": f"the lines given for manifest {sha[:12]} do not hash "
                                      "to its sha256: nothing written"}
    store_manifest(root, lines)
    path = os.path.join(root, "sets", f"{req['set']}.json")
    record = read_json(path, {})
    record.update(manifest=sha, manifest_from_journal=time.time())
    write_json(path, record)
    return {"ok": True, "sha": sha, "set": req["set"]}


def main():
    op = sys.argv[1]
    if op == "build":
        result = op_build(sys.argv[2])
        answer(result, 0 if result.get("ok") else 1)
    ops = {"inspect": op_inspect, "snapshot": op_snapshot, "switch": op_switch,
           "prune": op_prune, "remove": op_remove, "platform": op_platform,
           "wheels": op_wheels, "manifest": op_manifest, "check": op_check,
           "put-manifest": op_put_manifest}
    req = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    try:
        result = ops[op](req)
    except Exception as exc:  # noqa: BLE001 - one JSON line whatever happens
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    answer(result, 0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
