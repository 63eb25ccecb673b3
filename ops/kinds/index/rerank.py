"""Reranking: the hybrid search's top hits reordered by an llmops server's `/v1/rerank`
(vLLM's scoring API: a cross-encoder scores each (query, chunk) pair; an embedding model,
which vLLM also serves there, scores the cosine of the two embeddings). Each hit keeps its
hybrid score beside the reranker's, so the CLI and the console show both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.ops.kinds.index.hits import Hit

PROBE_QUERY = "rerank probe"
PROBE_DOCS = ["a probe document", "another probe document"]


class RerankError(TransportError):
    """The rerank server did not answer /v1/rerank, or not with one score per document."""


def rerank_server(spec: IndexSpec, hosts: HostPool) -> ServerSpec | None:
    """The rerank server's desired spec (the lab's); None when the index names none."""
    found = hosts.desired("server", spec.rerank_server) if spec.rerank_server else None
    return found if isinstance(found, ServerSpec) else None


def parse_scores(answer: Any, documents: int) -> list[float]:
    """Pure: vLLM's rerank answer (`results`: index, relevance_score) as one score per
    document in the documents' order; RerankError when any is missing."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise RerankError(f"/v1/rerank answered without results: {str(answer)[:200]}")
    scores: dict[int, float] = {}
    for row in results:
        try:
            scores[int(row["index"])] = float(row["relevance_score"])
        except (KeyError, TypeError, ValueError):
            raise RerankError(f"/v1/rerank: a result without index and score: {row}") from None
    if sorted(scores) != list(range(documents)):
        raise RerankError(f"/v1/rerank scored {len(scores)} of {documents} documents")
    return [scores[i] for i in range(documents)]


def reorder(hits: list[Hit], scores: list[float], k: int) -> list[Hit]:
    """Pure: the hits by the reranker's score (highest first; ties keep the hybrid order),
    each carrying its score, cut to k."""
    ranked = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [replace(hits[i], rerank_score=round(scores[i], 6)) for i in ranked[:k]]


class Reranker:
    """Scores for (query, documents) through one tunnel held for a `with`."""

    def __init__(self, http: httpx.Client, model: str, name: str) -> None:
        self.http, self.model, self.name = http, model, name

    def scores(self, query: str, documents: list[str]) -> list[float]:
        if not documents:
            return []
        try:
            resp = self.http.post("/v1/rerank", json={"model": self.model, "query": query,
                                                      "documents": documents})
        except httpx.HTTPError as exc:
            raise RerankError(f"server {self.name} /v1/rerank: {exc}") from exc
        if resp.status_code != 200:
            raise RerankError(f"server {self.name} /v1/rerank answered {resp.status_code}: "
                              f"{resp.text[:300]}")
        return parse_scores(resp.json(), len(documents))


@contextmanager
def reranker(spec: IndexSpec, hosts: HostPool, timeout: float = 60.0) -> Iterator[Reranker]:
    server = rerank_server(spec, hosts)
    if server is None:
        raise SpecError("rerank_server", f"there is no server named {spec.rerank_server}",
                        "add it first (llmops server up NAME ... --arg runner=pooling), or "
                        "drop rerank_server")
    t = hosts.transport(server.host)
    with t.forward(server.port, reach_address(server)) as local, httpx.Client(
        base_url=f"http://127.0.0.1:{local}", timeout=timeout
    ) as http:
        yield Reranker(http, server.api_model(), server.name)


def rerank_hits(spec: IndexSpec, hosts: HostPool, query: str, hits: list[Hit],
                k: int) -> list[Hit]:
    """The hits reordered by the spec's rerank server, top k."""
    with reranker(spec, hosts) as r:
        return reorder(hits, r.scores(query, [h.text for h in hits]), k)


def probe(spec: IndexSpec, hosts: HostPool) -> None:
    """The rerank server answers /v1/rerank with a score per document (preflight); SpecError
    naming rerank_server and the fix otherwise."""
    try:
        with reranker(spec, hosts, timeout=30.0) as r:
            r.scores(PROBE_QUERY, PROBE_DOCS)
    except (RerankError, TransportError, OSError) as exc:
        raise SpecError(
            "rerank_server", f"server {spec.rerank_server} did not answer /v1/rerank: {exc}",
            "serve a cross-encoder or an embedding model with args runner=pooling "
            "(vLLM's scoring API), or drop rerank_server",
        ) from exc
