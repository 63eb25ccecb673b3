"""The index in a word and a row (Summarizes): what `index list` prints and the Indexes view
reads: ready (the collection holds what the spec makes), stale (it holds something else, or
the documents changed since the last ingest), absent (no collection), stopped (llmops's
instance is not running), unreachable (the instance does not answer)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Sample
from llmops.ops.kinds.index.apply import observe
from llmops.ops.kinds.index.observed import IndexObserved
from llmops.ops.kinds.index.spec import IndexSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def index_state(spec: IndexSpec, observed: IndexObserved) -> str:
    """One word from what was observed (pure)."""
    if spec.launch != "attach" and observed.proc_running is False:
        return "stopped"
    if observed.reachable is False:
        return "unreachable"
    if not observed.exists or observed.collection != spec.collection:
        return "absent"
    if observed.data_key != spec.data_key(observed.embed_model):
        return "stale"
    if spec.source and observed.source_now and observed.source_now != observed.source_fp:
        return "stale (documents changed)"
    return "ready"


class Seen:
    """The last observation per index, so the row can show its backups and version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, IndexObserved] = {}

    def put(self, spec: IndexSpec, observed: IndexObserved) -> None:
        with self._lock:
            self._seen[spec.name] = observed

    def get(self, spec: IndexSpec) -> IndexObserved | None:
        with self._lock:
            return self._seen.get(spec.name)


def status(spec: IndexSpec, hosts: HostPool, seen: Seen) -> str:
    observed = observe(spec, hosts)
    seen.put(spec, observed)
    return index_state(spec, observed)


def summary(spec: IndexSpec, state: str, latest: Sample | None,
            observed: IndexObserved | None) -> dict[str, Any]:
    """The row: instance, collection, embedding source, chunking, alpha, backups."""
    backups = observed.backups if observed else {}
    newest = max(backups.items(), key=lambda kv: kv[1].at)[0] if backups else None
    return {
        "name": spec.name,
        "host": spec.host,
        "launch": spec.launch,
        "collection": spec.collection,
        "state": state,
        "version": observed.version if observed else None,
        "embed": f"{spec.embed_server} ({spec.vectorizer})" if spec.vectorizer
        else spec.embed_server,
        "chunking": f"{spec.chunk_size}/{spec.chunk_overlap}",
        "alpha": spec.alpha,
        "source": spec.source,
        "backup_id": spec.backup_id,
        "last_backup": newest,
        "backups": len(backups),
        "count": observed.count if observed else None,
        "dims": observed.dims if observed else None,
    }
