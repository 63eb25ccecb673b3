"""Retrieval quality: recall@k and MRR of an index's hybrid search on queries whose relevant
documents are known. Scoring is pure; `run_eval` asks the index. Results are kept in the
index's record on its host, per lab commit and per retrieval key (objects, alpha, k), so a
change of chunking, embedding model or alpha is compared with the one before, and the
checklist can tell when a rollback did not bring recall back."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.index import records
from llmops.ops.kinds.index.embed import embed_server
from llmops.ops.kinds.index.query import MAX_K, hybrid_only
from llmops.ops.kinds.index.rerank import rerank_hits
from llmops.ops.kinds.index.spec import IndexSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.ops.transport import Transport

MAX_QUERIES = 1000


@dataclass(frozen=True)
class EvalQuery:
    """One query and the documents (sources: `file.md`, `faq.jsonl#id`) it should find."""

    query: str
    expected: tuple[str, ...]


def parse_queries(text: str) -> list[EvalQuery]:
    """.jsonl lines {"query": ..., "expected": [source, ...]} (or "expected_ids", or one
    "expected" string); ValueError naming the first bad line."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query = row["query"]
            expected = row.get("expected", row.get("expected_ids"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError(f"line {number}: not {{\"query\", \"expected\": [...]}}") from None
        if isinstance(expected, str):
            expected = [expected]
        if not isinstance(query, str) or not query.strip() or not expected:
            raise ValueError(f"line {number}: a query and at least one expected document")
        found.append(EvalQuery(query, tuple(str(e) for e in expected)))
    if not found:
        raise ValueError("no queries")
    if len(found) > MAX_QUERIES:
        raise ValueError(f"{len(found)} queries: at most {MAX_QUERIES}")
    return found


def score(ranked: list[list[str]], queries: list[EvalQuery], k: int) -> dict[str, float]:
    """recall@k: the share of each query's expected documents in its top k (averaged); MRR:
    1 / the rank of its first expected document (0 when none is found), averaged."""
    recalls, reciprocal = [], []
    for sources, q in zip(ranked, queries, strict=True):
        docs: list[str] = []
        for source in sources:  # documents in rank order, each once (chunks collapse)
            if source not in docs:
                docs.append(source)
        wanted = set(q.expected)
        recalls.append(len(wanted & set(docs[:k])) / len(wanted))
        first = next((i for i, d in enumerate(docs, 1) if d in wanted), None)
        reciprocal.append(1.0 / first if first else 0.0)
    n = len(queries)
    return {"recall": round(sum(recalls) / n, 4), "mrr": round(sum(reciprocal) / n, 4)}


def run_eval(spec: IndexSpec, hosts: HostPool, queries: list[EvalQuery],
             k: int | None = None) -> dict[str, Any]:
    """Every query through the index's hybrid search; recall@k and MRR with the per-query
    ranks (documents, in order). With a rerank server, the same hits reranked too
    (`rerank_recall`, `rerank_mrr`), so the two stand side by side in one entry."""
    k = k or spec.eval_k
    began = time.monotonic()
    deep = min(MAX_K, 4 * k)
    ranked: list[list[str]] = []
    reranked: list[list[str]] = []
    for q in queries:
        if not spec.rerank_server:
            ranked.append([h.source for h in hybrid_only(spec, hosts, q.query, deep)])
            continue
        hits = hybrid_only(spec, hosts, q.query, max(deep, spec.rerank_depth))
        ranked.append([h.source for h in hits[:deep]])
        top = hits[:spec.rerank_depth]
        reranked.append([h.source for h in rerank_hits(spec, hosts, q.query, top, len(top))])
    result: dict[str, Any] = {**score(ranked, queries, k), "k": k, "queries": len(queries),
                              "alpha": spec.alpha}
    if spec.rerank_server:
        again = score(reranked, queries, k)
        result |= {"rerank": spec.rerank_server, "rerank_depth": spec.rerank_depth,
                   "rerank_recall": again["recall"], "rerank_mrr": again["mrr"]}
    result["seconds"] = round(time.monotonic() - began, 3)
    result["per_query"] = [
        {"query": q.query, "expected": list(q.expected), "found": r[:k],
         **({"reranked": reranked[i][:k]} if reranked else {})}
        for i, (q, r) in enumerate(zip(queries, ranked, strict=True))]
    return result


def read_queries(t: Transport, path: str) -> list[EvalQuery]:
    return parse_queries(t.read_text(path))


def retrieval_key(spec: IndexSpec, hosts: HostPool) -> str:
    server = embed_server(spec, hosts)
    return spec.retrieval_key(server.model if server else None)


def record_eval(spec: IndexSpec, hosts: HostPool, result: dict[str, Any],
                commit: str | None, by: str) -> dict[str, Any]:
    """Keep the result in the index's record on its host (without the per-query detail)."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    entry = {k: v for k, v in result.items() if k != "per_query"}
    entry |= {"commit": commit, "retrieval_key": retrieval_key(spec, hosts), "by": by,
              "chunking": f"{spec.chunk_size}/{spec.chunk_overlap}", "at": time.time(),
              "embed": spec.embed_server}
    records.add_eval(t, facts, spec.name, entry)
    return entry


def eval_history(spec: IndexSpec, hosts: HostPool) -> list[dict[str, Any]]:
    """Every eval kept for the index, newest first."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    return list(reversed(records.read(t, facts, spec.name).get("evals", [])))
