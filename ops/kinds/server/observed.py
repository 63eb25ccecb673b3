"""What observe finds of a server on its host, and what each plan step carries: typed, so
the pure plan and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Observed, StepData


class ProcObserved(BaseModel):
    """One of the server's processes: as procctl reports it, plus what llmops recorded when
    it started it (launch hash, port, where the forwarder listens)."""

    model_config = ConfigDict(extra="ignore")

    running: bool = False
    state: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    hash: str | None = None
    port: int | None = None
    listen: str | None = None
    started: float | None = None
    sleeping: bool | None = None
    """Standby only: asked of vLLM; None when the question failed (treated as maybe asleep)."""

    @property
    def crashed(self) -> bool:
        """Died with an error: its engine core and workers may outlive it in its session."""
        return not self.running and self.exit_code not in (0, None)


class ServerObserved(Observed):
    """The server's processes by name, the live colour, the grace period's end, and the host
    facts the argv is built from."""

    facts: dict[str, Any] = Field(default_factory=dict)
    procs: dict[str, ProcObserved] = Field(default_factory=dict)
    live: str | None = None
    idle_until: float | None = None
    now: float = 0.0

    def proc(self, name: str) -> ProcObserved:
        return self.procs.get(name) or ProcObserved()


@dataclass(frozen=True)
class ServerStep(StepData):
    """A server step's payload: which process, on which port, started how."""

    proc: str | None = None
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    hash: str | None = None
    colour: str | None = None
    previous: str | None = None
    listen: str | None = None
    model: str | None = None
    revision: str | None = None
