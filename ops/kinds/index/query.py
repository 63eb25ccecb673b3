"""Hybrid search (BM25 + vector, weighted by alpha) on an index: the query embedded by the
index's embedding server, top-k chunks with their scores, text and source. What `llmops
index query`, the console's query box and the checklist's known query all run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.index.embed import embedder
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.weaviate_conn import connect

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MAX_K = 100


@dataclass(frozen=True)
class Hit:
    """One chunk found: its document, place, text and hybrid score."""

    source: str
    chunk: int
    text: str
    score: float | None
    uuid: str


def hybrid(spec: IndexSpec, hosts: HostPool, text: str, k: int = 5,
           alpha: float | None = None) -> list[Hit]:
    """Top-k chunks for `text` (alpha: the spec's unless given)."""
    from weaviate.classes.query import MetadataQuery

    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1..{MAX_K}")
    vector: list[float] | None = None
    if spec.embed_server:
        with embedder(spec, hosts, timeout=60.0) as e:
            vector = e.embed([text])[0]
    with connect(spec, hosts) as client:
        found = client.collections.get(spec.collection).query.hybrid(
            query=text, vector=vector, alpha=spec.alpha if alpha is None else alpha, limit=k,
            return_metadata=MetadataQuery(score=True),
            return_properties=["text", "source", "chunk"],
        )
    return [_hit(o) for o in found.objects]


def _hit(o: Any) -> Hit:
    props = o.properties or {}
    score = getattr(o.metadata, "score", None)
    return Hit(str(props.get("source", "")), int(props.get("chunk") or 0),
               str(props.get("text", "")), float(score) if score is not None else None,
               str(o.uuid))
