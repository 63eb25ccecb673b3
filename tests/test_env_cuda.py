"""CUDA versions (issue 14 item 4): the host's probe reports the CUDA version its driver offers
(NVML, else nvidia-smi; none without a driver) and the one its python's torch was built for;
envctl reads the same of a venv's torch (torch/version.py, no import). Each is asserted on
what the machine itself reports, read apart from llmops (nvidia-smi, `import torch`), never on
this machine's having or lacking GPUs; the Hosts view's and the Envs view's cells say it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from labtools import llmops

from llmops.console.presenters.env import EnvPresenter
from llmops.console.presenters.host import HostPresenter
from llmops.console.presenters.host_words import cuda_cell
from llmops.console.screens.resource_poll import RowState
from llmops.ops.hostside import envctl
from llmops.ops.kinds.env import EnvSpec
from llmops.ops.kinds.host.spec import HostSpec


def driver_cuda() -> str | None:
    """The driver's CUDA version as nvidia-smi prints it here; None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60)
    found = re.search(r"CUDA Version:\s*(\S+)", done.stdout)
    return found.group(1) if done.returncode == 0 and found else None


@cache
def torch_cuda_imported(python: str) -> str | None:
    """torch.version.cuda as torch itself says, in a python of its own (seconds: the import)."""
    done = subprocess.run([python, "-c", "import torch; print(torch.version.cuda)"],
                          capture_output=True, text=True, timeout=300, check=True)
    value = done.stdout.strip().splitlines()[-1]
    return None if value == "None" else value


def test_cuda_cells_say_driver_and_torch() -> None:
    gpu = {"gpus": [{"name": "H200"}], "gpu_driver": {"driver": "580.159.04", "cuda": "13.0"},
           "cuda": {"driver": "13.0", "torch": "12.8", "torch_installed": True}}
    cpu = {"gpus": [], "gpu_driver": None,
           "cuda": {"driver": None, "torch": None, "torch_installed": True}}
    assert cuda_cell(gpu) == "13.0 / 12.8"
    assert cuda_cell(cpu) == "none / none"  # a CPU torch on a host without a driver
    assert cuda_cell({"gpus": [], "cuda": {"driver": None, "torch": None}}) == "none / -"
    assert cuda_cell({"gpu_driver": {"cuda": "12.4"}}) == "12.4 / -"  # a probe from before
    assert cuda_cell(None) == "?"
    assert "cuda (driver / torch)" in HostPresenter.columns


def test_probe_reports_what_this_host_reports(tmp_path: Path) -> None:
    """The probe of host `local` through the CLI against nvidia-smi and torch's own answer."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "work"))
    facts = json.loads(llmops(lab, "host", "show", "local", "--json").stdout)["facts"]
    cuda = facts["cuda"]
    assert cuda["driver"] == driver_cuda(), cuda
    assert cuda["torch_installed"] is True  # make setup installs torch in this python
    torch = torch_cuda_imported(sys.executable)
    assert cuda["torch"] == torch, cuda
    want = f"{cuda['driver'] or 'none'} / {torch or 'none'}"
    spec = HostSpec(name="local", local=True, python=sys.executable,
                    workdir=str(tmp_path / "work"))
    presenter = HostPresenter()
    cells = [str(c) for c in presenter.cells(RowState(spec=spec, state="up", facts=facts))]
    assert cells[presenter.columns.index("cuda (driver / torch)")] == want
    assert cells[presenter.columns.index("torch")] == facts["packages"]["torch"]


def test_envctl_reads_a_venvs_torch_cuda() -> None:
    """envctl's reading of a venv's torch (this test run's, a real torch) == torch's own."""
    expected = torch_cuda_imported(sys.executable)
    assert envctl.torch_cuda(sys.prefix) == (expected or "none")
    assert envctl.torch_cuda(str(Path(sys.prefix) / "no-such-venv")) is None
    presenter = EnvPresenter()
    spec = EnvSpec(name="e", host="h", packages=["torch==2.13.0"])
    row = RowState(spec=spec, state="ready",
                   summary={"versions": {"torch": "2.13.0"}, "torch_cuda": expected or "none",
                            "drift": []})
    cells = [str(c) for c in presenter.cells(row)]
    assert cells[presenter.columns.index("cuda")] == (expected or "none")
