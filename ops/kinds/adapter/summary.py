"""The adapter in a word and a row (Summarizes): what `adapter list` prints and the Adapters
view reads: deployed (the server serves this sha), stale (it serves another), unloaded (stored
on the server's host, not served: e.g. the server restarted), stored (no server asked), absent
(not in the store yet)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.adapter.apply import observe
from llmops.ops.kinds.adapter.observed import AdapterObserved
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Sample

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def adapter_state(spec: AdapterSpec, observed: AdapterObserved) -> str:
    """One word from what was observed (pure)."""
    stored = observed.stored(spec.sha256)
    if spec.server is None:
        return "stored" if stored else "absent"
    if spec.name in observed.loaded:
        return "deployed" if observed.loaded[spec.name] == spec.sha256 else "stale"
    if observed.server_answers is False:
        return "unloaded (server down)" if stored else "absent"
    return "unloaded" if stored else "absent"


class Seen:
    """The last observation per adapter, so the row (built from the spec and the state word)
    can show the load seconds its status read from the host a moment before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], AdapterObserved] = {}

    def put(self, spec: AdapterSpec, observed: AdapterObserved) -> None:
        with self._lock:
            self._seen[(spec.name, spec.sha256)] = observed

    def get(self, spec: AdapterSpec) -> AdapterObserved | None:
        with self._lock:
            return self._seen.get((spec.name, spec.sha256))


def status(spec: AdapterSpec, hosts: HostPool, seen: Seen) -> str:
    """Observed now, without hashing the store copy (a poll; the checklist hashes it)."""
    observed = observe(spec, hosts, verify=False)
    seen.put(spec, observed)
    return adapter_state(spec, observed)


def summary(
    spec: AdapterSpec, state: str, latest: Sample | None, observed: AdapterObserved | None
) -> dict[str, Any]:
    """The row: server, source, short sha, whether it is loaded, the last load's seconds."""
    record = observed.state if observed else {}
    return {
        "name": spec.name,
        "server": spec.server,
        "source": f"run {spec.run}" if spec.run else f"path {spec.path}",
        "sha": spec.short_sha(),
        "sha256": spec.sha256,
        "state": state,
        "loaded": state == "deployed",
        "load_seconds": record.get("load_seconds") if record.get("sha") == spec.sha256 else None,
        "merge_to": spec.merge_to,
    }
