"""What observe finds of an adapter, and what each plan step carries: typed, so the pure plan
and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from llmops.ops.kinds.base import Observed, StepData


class AdapterObserved(Observed):
    """The store copy, the merged folder, what the server has loaded, and where the source is.

    `host` is where the store copy lives: the server's host, or (no server) the source's."""

    host: str | None = None
    store_path: str | None = None
    """<workdir>/adapters/<sha256> on `host`: the folder vLLM loads."""
    store_sha: str | None = None
    """What the store copy's files hash to (None: no copy)."""
    source_host: str | None = None
    source_path: str | None = None
    """Where the adapter comes from (a run's <cfg>/adapter, or the spec's path); None when it
    was not looked for (the store holds it already) or not found."""
    server_answers: bool | None = None
    """Whether the server's /v1/models answered (None: no server, or not asked)."""
    loaded: dict[str, str | None] = Field(default_factory=dict)
    """Adapters the server serves on its base: name -> sha (None: loaded from outside the
    store)."""
    merged: bool = False
    """merge_to holds a model (config.json)."""
    merged_sha: str | None = None
    """The adapter sha llmops recorded in merge_to when it merged (None: not llmops's)."""
    base: str | None = None
    """The base model to merge into: the server's model, else the run's base."""
    state: dict[str, Any] = Field(default_factory=dict)
    """The adapter's record on the host: loaded sha, server, load seconds."""

    def stored(self, sha: str) -> bool:
        return self.store_sha == sha


@dataclass(frozen=True)
class AdapterStep(StepData):
    """An adapter step's payload: where from, where to, which server."""

    host: str | None = None
    source_host: str | None = None
    source_path: str | None = None
    store_path: str | None = None
    sha: str | None = None
    server: str | None = None
    out: str | None = None
    base: str | None = None
