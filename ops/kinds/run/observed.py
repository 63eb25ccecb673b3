"""What observe finds of a run on its host, and what each plan step carries: typed, so the
pure plan and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Observed, StepData


class ProcObserved(BaseModel):
    """A detached process of the run (the trainer, or the screening) as procctl reports it."""

    model_config = ConfigDict(extra="ignore")

    running: bool = False
    state: str | None = None
    """running | exited | missing | reused (None: never started)."""
    exit_code: int | None = None
    pid: int | None = None
    cwd: str | None = None
    """The trainer starts in its cfg folder: the folder's name says which cfg runs."""


class CfgObserved(BaseModel):
    """One training config's folder on the host (`<workdir>/runs/<name>/<cfg>/`)."""

    model_config = ConfigDict(extra="forbid")

    config: bool = False
    """config.json was written (the cfg was prepared)."""
    screened: bool = False
    """report.json exists: screening finished for this cfg."""
    report_dataset_sha256: str | None = None
    report_validation_sha256: str | None = None
    checkpoint: int | None = None
    """Step of the newest complete checkpoint (what a start resumes from)."""
    done: bool = False
    """result.json exists: the final adapter was saved."""
    adapter_sha256: str | None = None
    """As result.json says (the checklist recomputes it on the host)."""
    adapter: bool = False
    """adapter/adapter_config.json is there."""
    released: bool = False
    """The spec was removed; the outputs are kept."""
    last_event: str | None = None
    """The newest progress.jsonl record's event: start, log, eval, checkpoint, done, stopped,
    error (None: the trainer never wrote one)."""
    last_at: float | None = None
    step: int | None = None
    max_steps: int | None = None
    error: str | None = None
    """The message of an `error` record, when that is the newest."""


class RunObserved(Observed):
    """The trainer and screening processes, the cfg the host's `current` file names, every
    cfg folder of the run, the data files' sha256 now (to tell a stale screening), host time."""

    facts: dict[str, Any] = Field(default_factory=dict)
    proc: ProcObserved = Field(default_factory=ProcObserved)
    screen: ProcObserved = Field(default_factory=ProcObserved)
    current: str | None = None
    cfgs: dict[str, CfgObserved] = Field(default_factory=dict)
    dataset_sha256: str | None = None
    validation_sha256: str | None = None
    now: float = 0.0

    def cfg(self, cfg: str) -> CfgObserved:
        return self.cfgs.get(cfg) or CfgObserved()

    @property
    def running_cfg(self) -> str | None:
        """The cfg the running trainer trains (its cwd), else None."""
        if not self.proc.running:
            return None
        if self.proc.cwd:
            return self.proc.cwd.rstrip("/").rsplit("/", 1)[-1]
        return self.current


@dataclass(frozen=True)
class RunStep(StepData):
    """A run step's payload: which cfg, which process, and what a start or a config write
    needs (built by the pure plan from the spec and the host's facts)."""

    cfg: str | None = None
    proc: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    resume_from: int | None = None
    cfgs: tuple[str, ...] = ()
    """release: the cfg folders that get the `released` marker."""
