"""A host's probe in words: pure, and free of Textual, so the CLI (`llmops host list`) prints
the Hosts view's cells without loading the console's widgets."""

from __future__ import annotations

from typing import Any


def cuda_cell(facts: dict[str, Any] | None) -> str:
    """`DRIVER / TORCH`: the CUDA version the host's driver offers (NVML, else nvidia-smi;
    `none` with no driver) and the one the host python's torch was built for (`none` for a
    CPU build, `-` without torch), as the probe read them."""
    if not facts:
        return "?"
    cuda = facts.get("cuda") or {}
    torch = cuda.get("torch") or ("none" if cuda.get("torch_installed") else "-")
    driver = cuda.get("driver") or (facts.get("gpu_driver") or {}).get("cuda")
    return f"{driver or 'none'} / {torch}"
