"""One chunk a search found: what the query, the reranker and the eval pass between them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """A chunk's document, place, text, hybrid score and (reranked) the reranker's score."""

    source: str
    chunk: int
    text: str
    score: float | None
    uuid: str
    rerank_score: float | None = None
