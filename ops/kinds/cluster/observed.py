"""What observe finds of a cluster on its hosts, and what each plan step carries: typed, so
the pure plan and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Observed, StepData


class NodeObserved(BaseModel):
    """One node's `ray start --block` process on its host, as procctl and the record saw it."""

    model_config = ConfigDict(extra="forbid")

    running: bool = False
    crashed: bool = False
    hash: str | None = None
    """The launch hash the running process was started with (its record on the host)."""


class ClusterObserved(Observed):
    """Every node the spec (or the head's record of the last start) names, by host."""

    nodes: dict[str, NodeObserved] = Field(default_factory=dict)
    addresses: dict[str, str] = Field(default_factory=dict)
    """Host -> its address on the cluster's interface (what Ray and vLLM advertise)."""
    python: dict[str, str] = Field(default_factory=dict)
    """Host -> the python that runs Ray there."""

    def node(self, host: str) -> NodeObserved:
        return self.nodes.get(host) or NodeObserved()


@dataclass(frozen=True)
class ClusterStep(StepData):
    """A cluster step's payload: which node, started how."""

    host: str = ""
    role: str = ""
    env: dict[str, str] = field(default_factory=dict)
    hash: str = ""
    nodes: list[str] = field(default_factory=list)
    """wait-nodes: the hosts that must show in the GCS."""
