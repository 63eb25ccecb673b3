"""Hybrid search (BM25 + vector, weighted by alpha) on an index: the query embedded by the
index's embedding server (or by Weaviate's vectorizer module), top-k chunks with their scores,
text and source; reordered by the spec's rerank server when it names one (the hybrid's top
`rerank_depth`, then the reranker's top k). What `llmops index query`, the console's query
box, the eval and the checklist's known query run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.index.embed import embedder
from llmops.ops.kinds.index.hits import Hit
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.weaviate_conn import connect

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MAX_K = 100
__all__ = ["MAX_K", "Hit", "hybrid", "hybrid_only"]


def hybrid(spec: IndexSpec, hosts: HostPool, text: str, k: int = 5,
           alpha: float | None = None, *, rerank: bool = True) -> list[Hit]:
    """Top-k chunks for `text` (alpha: the spec's unless given); reranked when the spec
    names a rerank server (unless `rerank=False`)."""
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1..{MAX_K}")
    if not (rerank and spec.rerank_server):
        return hybrid_only(spec, hosts, text, k, alpha)
    from llmops.ops.kinds.index.rerank import rerank_hits

    found = hybrid_only(spec, hosts, text, max(k, spec.rerank_depth), alpha)
    return rerank_hits(spec, hosts, text, found, k)


def hybrid_only(spec: IndexSpec, hosts: HostPool, text: str, k: int,
                alpha: float | None = None) -> list[Hit]:
    """Weaviate's hybrid search alone, top k."""
    from weaviate.classes.query import MetadataQuery

    vector: list[float] | None = None
    if spec.embeds_here():
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
