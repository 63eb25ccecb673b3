"""TEST-ONLY shim: lets the CPU build of vLLM run on Ray, as the shared notes
(ray-multinode.md) saw working. Never imported by the product: it is active only in the test
hosts' python (tests/test_cluster_kind.py makes a venv whose .pth puts this folder on the
path); on GPU hosts vLLM runs on Ray as it is.

The CPU platform has no Ray device key (vLLM then refuses: "current platform cpu does not
support ray"). This sets it to a custom Ray resource the test cluster's nodes offer (one per
node, so one rank per node), and makes vLLM's Ray workers report device id 0 for themselves
(Ray has no accelerator ids for custom resources). Patched as the modules load, nothing else.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

DEVICE_KEY = os.environ.get("LLMOPS_RAYSHIM_KEY", "llmops_cpu")


def _node_and_device(self: Any) -> tuple[str, list[int]]:
    import ray

    return ray.get_runtime_context().get_node_id(), [0]


def _cpu(module: ModuleType) -> None:
    module.CpuPlatform.ray_device_key = DEVICE_KEY


def _utils(module: ModuleType) -> None:
    wrapper = getattr(module, "RayWorkerWrapper", None)
    if wrapper is not None:
        wrapper.get_node_and_physical_gpu_ids = _node_and_device


def _v2(module: ModuleType) -> None:
    module.RayWorkerProc.get_node_and_physical_gpu_ids = _node_and_device


PATCHES = {"vllm.platforms.cpu": _cpu, "vllm.v1.executor.ray_utils": _utils,
           "vllm.v1.executor.ray_executor_v2": _v2}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, patch: Any) -> None:
        self.inner, self.patch = inner, patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        self.patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, PATCHES[name])
        return spec


sys.meta_path.insert(0, _Finder())
