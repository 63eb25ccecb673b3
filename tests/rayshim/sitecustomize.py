"""TEST-ONLY shim: lets the CPU build of vLLM run on Ray, as the shared notes
(ray-multinode.md) saw working. Never imported by the product: it is active only in the test
hosts' python (tests/clusterfixtures.py makes a venv whose .pth puts this folder on the
path); on GPU hosts vLLM runs on Ray as it is.

The CPU platform has no Ray device key (vLLM then refuses: "current platform cpu does not
support ray"). This sets it to a custom Ray resource the test cluster's nodes offer (one per
node, so one rank per node), and makes vLLM's Ray workers report device id 0 for themselves
(Ray has no accelerator ids for custom resources). Patched as the modules load, nothing else.

And one CPU-build bug that PP meets on any executor: a later pipeline rank copies the tensors it
receives into `GPUModelRunner.intermediate_tensors` (v1/worker/gpu_model_runner.py,
sync_and_gather_intermediate_tensors: `assert self.intermediate_tensors is not None`), a buffer
only `_dummy_run` allocates. The GPU worker always runs it (profile_run in
determine_available_memory); the CPU worker runs it only to warm up compiled graphs
(cpu_model_runner.warming_up_model returns at once under enforce-eager). So rank 1 failed its
first forward: with the compiled-graph Ray executor as that AssertionError; with the default
(V2) one as a `KeyError` in `scheduler.update_from_output`, since the engine reads only the
sample_tokens reply, and a rank whose execute_model failed answers it with an empty output.
The patch allocates the buffer, as _dummy_run does, on first use.

And Ray's memory monitor off in the test hosts (`RAY_memory_monitor_refresh_ms=0`, inherited
by the raylet that `ray start` spawns): the namespace "hosts" are one shared box, so the node
memory Ray watches is the whole machine's, held mostly by other tests' processes; at 95% it
killed a vLLM rank of the test's (seen 2026-11-27: `1 Workers (tasks / actors) killed due to
memory pressure (OOM)`, the engine then `RayWorkerProc rank=[0] died unexpectedly`). A real
node's memory is its own; nothing of the product sets this.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

DEVICE_KEY = os.environ.get("LLMOPS_RAYSHIM_KEY", "llmops_cpu")
os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")


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


def _runner(module: ModuleType) -> None:
    runner = module.CPUModelRunner
    gather = runner.sync_and_gather_intermediate_tensors

    def sync_and_gather(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.intermediate_tensors is None:  # what _dummy_run allocates
            self.intermediate_tensors = self.model.make_empty_intermediate_tensors(
                batch_size=self.max_num_tokens, dtype=self.model_config.dtype,
                device=self.device)
        return gather(self, *args, **kwargs)

    runner.sync_and_gather_intermediate_tensors = sync_and_gather


PATCHES = {"vllm.platforms.cpu": _cpu, "vllm.v1.executor.ray_utils": _utils,
           "vllm.v1.executor.ray_executor_v2": _v2, "vllm.v1.worker.cpu_model_runner": _runner}


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
