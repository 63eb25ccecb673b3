"""What observe finds of an index, and what each plan step carries: typed, so the pure plan
and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Observed, StepData


class BackupRecord(BaseModel):
    """One Weaviate backup llmops took: what the collection held then (never deleted)."""

    model_config = ConfigDict(extra="ignore")

    collection: str
    data_key: str | None = None
    source_fp: str | None = None
    count: int | None = None
    dims: int | None = None
    at: float = 0.0


class IndexObserved(Observed):
    """The instance (answers, version, llmops's process), the collection llmops made there
    (from the index's record on the host, checked live), and every backup it has taken."""

    reachable: bool | None = None
    """Whether Weaviate answered /v1/.well-known/ready (None: not asked)."""
    error: str | None = None
    version: str | None = None
    proc_running: bool | None = None
    """launch = binary / docker: whether llmops's process runs (None: attach)."""
    proc_hash: str | None = None
    """The launch hash the running process was started with."""
    collection: str | None = None
    """The collection the record says llmops made (None: none)."""
    exists: bool = False
    """That collection exists on the instance now."""
    target_exists: bool = False
    """The desired collection exists on the instance now (made by llmops or not)."""
    ef: int | None = None
    """The live collection's HNSW ef."""
    count: int | None = None
    """Objects in the live collection (None: not counted)."""
    dims: int | None = None
    """Vector length recorded for the live collection's objects (its snapshot)."""
    data_key: str | None = None
    """What the live collection's objects are a function of (IndexSpec.data_key)."""
    source_fp: str | None = None
    """Fingerprint of the documents last ingested into it (names, sizes, mtimes)."""
    source_now: str | None = None
    """Fingerprint of the source folder now (None: no source, or not readable)."""
    embed_model: str | None = None
    """The embedding server's model, as the lab has it."""
    backups: dict[str, BackupRecord] = Field(default_factory=dict)
    now: float = 0.0

    def backed_up(self) -> str | None:
        """A backup that holds what the live collection holds now, if one was taken."""
        for backup_id, b in sorted(self.backups.items(), key=lambda kv: -kv[1].at):
            if (b.collection == self.collection and b.data_key == self.data_key
                    and b.source_fp == self.source_fp):
                return backup_id
        return None

    def restorable(self, collection: str, data_key: str) -> str | None:
        """The newest backup of this collection holding objects made as `data_key` says."""
        for backup_id, b in sorted(self.backups.items(), key=lambda kv: -kv[1].at):
            if b.collection == collection and b.data_key == data_key:
                return backup_id
        return None


@dataclass(frozen=True)
class IndexStep(StepData):
    """An index step's payload: which collection, which backup, what the data will be."""

    collection: str | None = None
    backup_id: str | None = None
    data_key: str | None = None
    source_fp: str | None = None
    proc: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    hash: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
