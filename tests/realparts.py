"""The real parts the tests use (vLLM, netns sshd hosts, GPUs) and what a missing one does:
a skip, reported by `-rs`, on a developer's box; a failure in CI (`CI=true`), where every
real part must be there. GPUs are optional even in CI unless `LLMOPS_REQUIRE_GPU=1`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
GPU_REQUIRED = os.environ.get("LLMOPS_REQUIRE_GPU", "") == "1"
CAN_NETNS = os.geteuid() == 0 and shutil.which("ip") is not None


def missing(what: str, fix: str, *, required: bool = IN_CI, module: bool = False) -> NoReturn:
    """Skip (visibly) or fail, naming the part and how to get it."""
    if required:
        pytest.fail(f"{what} is missing and this run requires it: {fix}", pytrace=False)
    pytest.skip(f"{what} is missing: {fix}", allow_module_level=module)


def require_vllm(module: bool = True) -> None:
    """vLLM installed in this venv. Installed but broken (e.g. torchvision not matching
    torch) is a failure everywhere, never a skip: that is a fault to see, not a part missing."""
    if importlib.util.find_spec("vllm") is None:
        missing("vLLM", "`make host-extras` installs the CPU build", module=module)
    import vllm  # noqa: F401


def require_netns() -> None:
    if not CAN_NETNS:
        missing("root and `ip` (network-namespace sshd test hosts)",
                "run as root with iproute2 and openssh-server (`make system-deps`)")


@cache
def gpu_count() -> int:
    """NVIDIA GPUs the driver exposes, read apart from NVML (which the probe uses): the
    driver's /proc folder (one entry per GPU a container may see), else `nvidia-smi -L`."""
    folder = Path("/proc/driver/nvidia/gpus")
    if folder.is_dir():
        return len(list(folder.iterdir()))
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
        return sum(line.startswith("GPU ") for line in done.stdout.splitlines())
    return 0


def require_gpu(n: int = 1) -> None:
    if gpu_count() < n:
        missing(f"{n} NVIDIA GPU(s) (this machine has {gpu_count()})",
                "run on a GPU host; set LLMOPS_REQUIRE_GPU=1 where one must be there",
                required=GPU_REQUIRED)


def assert_probe_matches_machine(facts: dict[str, Any]) -> None:
    """A probe of this machine (host `local`, or a namespace host, which shares it) reports
    its cores and GPUs as the machine itself does, whatever they are; none says why."""
    assert facts["cpu_count"] == len(os.sched_getaffinity(0)), facts["cpu_count"]
    assert len(facts["gpus"]) == gpu_count(), (facts["gpus"], facts.get("gpu_note"))
    if not facts["gpus"]:
        assert facts["gpu_note"], "no GPUs and no note saying why"
    for gpu in facts["gpus"]:
        assert gpu["name"] and gpu["memory_total_bytes"] > 0, gpu
