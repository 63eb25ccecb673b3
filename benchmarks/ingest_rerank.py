"""What reranking costs and what it changes: an index's query through llmops with and without
its rerank server, and recall@k / MRR of both on one eval set, in one run.

    .venv/bin/python benchmarks/ingest_rerank.py [--docs 20] [--queries 30] [--depth 20]
        [--k 4] [--keep DIR]

Set up as benchmarks/ingest.py does (a lab, host `local`, a real CPU vLLM serving
all-MiniLM-L6-v2 as `emb`, the Weaviate stand-in as its own process, its corpus ingested); the
reranker is that same server (vLLM's /v1/rerank scores an embedding model's cosine: no
cross-encoder can be downloaded here), so the figures are the pipeline's cost, not a
cross-encoder's quality.

- **query**: `Engine.index_query` (what `llmops index query` and the console run) for the same
  questions, alternating hybrid alone (the reference) and hybrid top `depth` reranked to top k;
  milliseconds median with min-max, and the ratio of the medians.
- **eval**: `Engine.index_eval` once: recall@k and MRR of the hybrid order and of the reranked
  one, on queries made from the corpus's topics (expected: every document of that topic).

The machine's load is printed: on a shared 2-core box other work inflates the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ingest import TOPICS, Bench, spread, write_corpus

from llmops.ops.kinds.index.spec import IndexSpec


def queries_for(docs: int) -> list[dict[str, object]]:
    """A query per topic; its documents are every n with n % len(TOPICS) == topic."""
    return [{"query": topic, "expected": [f"doc-{n:03d}.md" for n in range(docs)
                                          if n % len(TOPICS) == t]}
            for t, topic in enumerate(TOPICS) if t < docs]


def timed_query(bench: Bench, spec: IndexSpec, text: str, k: int) -> float:
    assert bench.engine is not None
    began = time.monotonic()
    hits = bench.engine.index_query(spec, text, k)
    seconds = time.monotonic() - began
    if len(hits) != k:
        raise SystemExit(f"{len(hits)} hits for {text!r}, not {k}")
    return seconds * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--queries", type=int, default=30, help="timed queries of each kind")
    parser.add_argument("--depth", type=int, default=20, help="hybrid hits the reranker sees")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-rerank-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    bench = Bench(root, 32, 400)
    try:
        docs = write_corpus(root / "docs", args.docs)
        plain = bench.up(docs)
        ranked = plain.model_copy(update={"rerank_server": "emb", "rerank_depth": args.depth})
        questions = [q["query"] for q in queries_for(args.docs)]
        runs: dict[str, list[float]] = {"hybrid": [], "reranked": []}
        for n in range(args.queries + 1):
            text = str(questions[n % len(questions)])
            for name, spec in (("hybrid", plain), ("reranked", ranked)):
                ms = timed_query(bench, spec, text, args.k)
                if n > 0:  # the first pair warms the tunnels and caches
                    runs[name].append(ms)
        ratio = statistics.median(runs["reranked"]) / statistics.median(runs["hybrid"])
        print(f"query, hybrid alone        {spread(runs['hybrid'], 'ms')}")
        print(f"query, reranked (depth {args.depth:2d}) {spread(runs['reranked'], 'ms')}")
        print(f"reranked / hybrid: {ratio:.2f}x the time of a query", flush=True)
        assert bench.engine is not None
        evals = "".join(json.dumps(q) + "\n" for q in queries_for(args.docs))
        result = bench.engine.index_eval(ranked, evals, args.k)
        print(f"eval ({result['queries']} queries, k {args.k}): hybrid recall@{args.k} "
              f"{result['recall']:.3f} MRR {result['mrr']:.3f}; reranked recall@{args.k} "
              f"{result['rerank_recall']:.3f} MRR {result['rerank_mrr']:.3f} "
              f"({result['seconds']:.1f}s)")
        print(f"load average at end: {os.getloadavg()}")
        return 0
    finally:
        bench.down()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
