"""Reranking through the real CLI: an index whose spec names a rerank server gets the hybrid
search's top `rerank_depth` hits reordered by that server's `/v1/rerank` (vLLM's scoring API).
No cross-encoder can be downloaded here, so the reranker is the session's embedding server
(all-MiniLM-L6-v2 on the CPU vLLM, test_index_support.py): vLLM serves /v1/rerank for an
embedding model too (the cosine of the two embeddings). No vLLM start of its own.

Covered: the reranker check and the preflight; query shows both scores and is ordered by the
reranker's (`--no-rerank` gives the hybrid order alone); `index eval` keeps recall@k and MRR
with and without reranking in one entry per commit, side by side in the CLI; the recall check
compares both; a rerank server that does not answer is refused (exit 2, nothing written) and
fails the reranker check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from labtools import llmops
from test_index_support import (
    Setup,
    act,
    checks,
    embedding_setup,
    free_port,
    hand_edit,
    snapshot,
    start_standin,
    write_docs,
)

from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

pytestmark = pytest.mark.timeout(1500)  # the first index module to run starts the vLLM

EVAL = [
    {"query": "how do I bake a loaf with a crisp crust", "expected": ["bread.txt"]},
    {"query": "tensor parallelism across GPUs", "expected": ["gpu.md"]},
    {"query": "watering and staking tomato plants", "expected": ["garden.md"]},
    {"query": "where does llmops keep the API key", "expected": ["faq.jsonl#keys"]},
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Setup:
    return embedding_setup(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def standin(setup: Setup) -> Iterator[Any]:
    handle = start_standin(setup.root / "rerank-backups")
    try:
        yield handle
    finally:
        llmops(setup.lab, "index", "remove", "ranked", check=None, timeout=300)
        handle.stop()


def test_reranked_query_and_eval_side_by_side(setup: Setup, standin: Any) -> None:
    lab = setup.lab
    docs = write_docs(setup.root / "rerank-docs")
    queries = setup.root / "rerank-queries.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in EVAL))
    created = act(lab, "index", "create", "ranked", "--host", "local", "--collection",
                  "Ranked", "--embed-server", "emb", "--rerank-server", "emb",
                  "--rerank-depth", "8", "--http-port", str(standin.http_port), "--grpc-port",
                  str(standin.grpc_port), "--source", str(docs), "--chunk-size", "120",
                  "--chunk-overlap", "20", "--eval-set", str(queries), "--eval-k", "1")
    got = checks(created)
    assert all(c["ok"] for c in got.values()), got
    assert "emb scores the known query's own text" in got["reranker"]["detail"]
    assert "reranked by emb" in got["recall@1"]["detail"], got["recall@1"]

    question = "how do I bake a loaf with a crisp crust"
    answer = json.loads(llmops(lab, "index", "query", "ranked", question, "--k", "3",
                               "--json").stdout)
    hits = answer["hits"]
    assert answer["rerank"] == "emb" and len(hits) == 3
    assert hits[0]["source"] == "bread.txt"
    assert all(h["score"] is not None and h["rerank_score"] is not None for h in hits)
    scores = [h["rerank_score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    plain = json.loads(llmops(lab, "index", "query", "ranked", question, "--k", "3",
                              "--no-rerank", "--json").stdout)["hits"]
    assert all(h["rerank_score"] is None for h in plain)
    plain_scores = [h["score"] for h in plain]
    assert plain_scores == sorted(plain_scores, reverse=True)
    table = llmops(lab, "index", "query", "ranked", question, "--k", "3").stdout
    assert "rerank" in table and "reranked by emb" in table

    first = json.loads(llmops(lab, "index", "eval", "ranked", "--queries", str(queries),
                              "--k", "1", "--json").stdout)
    assert first["rerank"] == "emb" and first["rerank_depth"] == 8
    assert first["rerank_recall"] == 1.0 and first["rerank_mrr"] == 1.0, first["per_query"]
    assert 0.0 <= first["recall"] <= 1.0 and "reranked" in first["per_query"][0]
    text = llmops(lab, "index", "eval", "ranked", "--queries", str(queries), "--k", "1").stdout
    assert "reranked by emb: recall@1 1.000" in text  # beside the hybrid's own line
    history = first["history"]  # the checklist's first measurement and this eval
    assert len(history) == 2 and history[1]["by"] == "checklist"
    assert all(row["rerank"] == "emb" and "rerank_recall" in row and "recall" in row
               for row in history)

    # a rerank server that does not answer: refused before anything is written ...
    port = free_port()
    (lab / "servers" / "ghost.toml").write_text(
        f'host = "local"\nmodel = "/models/none"\nport = {port}\n\n[args]\nrunner = "pooling"\n')
    hand_edit(lab, "a pooling server never started", "servers/ghost.toml")
    try:
        before = snapshot(lab)
        done = llmops(lab, "index", "create", "ranked", "--rerank-server", "ghost", "--json",
                      check=2)
        error = json.loads(done.stdout)["error"]
        assert "rerank_server" in error and "did not answer /v1/rerank" in error, error
        assert snapshot(lab) == before
        # ... and the reranker check fails on it (the same index, its reranker gone)
        from llmops.ops.kinds.index import IndexKind, IndexSpec

        opened = Lab(lab)
        engine = Engine(opened)
        try:
            spec = opened.read_spec("index", "ranked")
            assert isinstance(spec, IndexSpec)
            failed = {c.name: c.detail for c in IndexKind().validate(
                spec.model_copy(update={"rerank_server": "ghost"}), engine.hosts) if not c.ok}
            assert "reranker" in failed, failed
            assert {c.name for c in IndexKind().validate(spec, engine.hosts)
                    if not c.ok} == set()
        finally:
            engine.close()
            opened.close()
    finally:
        (lab / "servers" / "ghost.toml").unlink()
        hand_edit(lab, "the never-started server goes", "servers/ghost.toml")
