"""A Weaviate vectorizer module as the source of vectors, through the real CLI: `vectorizer =
"text2vec-openai"` with the session's embedding server (all-MiniLM-L6-v2 on the CPU vLLM,
test_index_support.py; no vLLM start of its own). llmops inserts chunks without vectors and
queries without a vector; the stand-in, as Weaviate does, calls the server's /v1/embeddings
at the base URL the collection names, from its own process (tests/weaviate_standin/modules.py).

Covered: the collection made through the client's `Configure.Vectors.text2vec_openai` (base
URL and model of server emb, only the chunk text embedded), ingest without vectors (objects
carry the server's embedding of their text), hybrid and vector-only queries vectorised by
Weaviate, near_text through the raw client, the checklist, and an instance without the module
refused before anything is written."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from labtools import llmops
from test_index_support import (
    Setup,
    act,
    checks,
    embedding_setup,
    facts,
    snapshot,
    start_standin,
    write_docs,
)

pytestmark = pytest.mark.timeout(1500)  # the first index module to run starts the vLLM


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Setup:
    return embedding_setup(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def standin(setup: Setup) -> Iterator[Any]:
    """The stand-in with text2vec-openai enabled (ENABLE_MODULES), no OPENAI_APIKEY."""
    from weaviate_standin import start_standin as start

    handle = start(0, 0, setup.root / "vec-backups", modules=["text2vec-openai"])
    try:
        yield handle
    finally:
        llmops(setup.lab, "index", "remove", "vec", check=None, timeout=300)
        handle.stop()


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_weaviate_embeds_through_the_module(setup: Setup, standin: Any) -> None:
    import weaviate

    from llmops.ops.kinds.index.vectorizer import NO_KEY
    from llmops.ops.kinds.server import ServerSpec
    from llmops.rollback.lab import Lab

    lab = setup.lab
    docs = write_docs(setup.root / "vec-docs")
    created = act(lab, "index", "create", "vec", "--host", "local", "--collection", "Vec",
                  "--embed-server", "emb", "--vectorizer", "text2vec-openai", "--http-port",
                  str(standin.http_port), "--grpc-port", str(standin.grpc_port), "--source",
                  str(docs), "--chunk-size", "200", "--chunk-overlap", "40")
    got = checks(created)
    assert all(c["ok"] for c in got.values()), got
    assert {"collection", "object count", "vector dims", "known query",
            "embedding dimension"} <= set(got)
    ingested = facts(created, "ingest")
    assert ingested["dims"] == 384 and ingested["count"] == ingested["added"] > 5

    opened = Lab(lab)
    try:
        server = opened.read_spec("server", "emb")
    finally:
        opened.close()
    assert isinstance(server, ServerSpec)
    with weaviate.connect_to_local(port=standin.http_port, grpc_port=standin.grpc_port,
                                   headers={"X-OpenAI-Api-Key": NO_KEY}) as client:
        coll = client.collections.get("Vec")
        module = coll.config.get().vector_config["default"].vectorizer
        assert str(module.vectorizer) in ("text2vec-openai", "Vectorizers.TEXT2VEC_OPENAI")
        assert module.model["baseURL"].rstrip("/") == f"http://127.0.0.1:{server.port}"
        assert module.model["model"] == server.api_model()
        one = coll.query.fetch_objects(limit=1, include_vector=True).objects[0]
        found = coll.query.near_text("tensor parallelism shards a model across GPUs", limit=1,
                                     return_properties=["source"]).objects
        assert found[0].properties["source"] == "gpu.md"
    # the object's vector is the server's embedding of its chunk text alone
    from llmops.ops.kinds.server.client import VllmClient

    with VllmClient(f"http://127.0.0.1:{server.port}", server.api_model()) as vllm:
        direct = vllm.embeddings([str(one.properties["text"])])[0]
    stored = one.vector["default"]
    assert cosine(list(stored), direct) > 0.999

    for question, alpha, expected in (("how do I bake a loaf with a crisp crust", "0.5",
                                       "bread.txt"),
                                      ("which memory holds the KV cache", "1", "gpu.md")):
        hits = json.loads(llmops(lab, "index", "query", "vec", question, "--alpha", alpha,
                                 "--json").stdout)["hits"]
        assert hits[0]["source"] == expected, hits

    # an instance without the module: refused before anything is written
    plain = start_standin(setup.root / "vec-plain-backups")
    try:
        before = snapshot(lab)
        done = llmops(lab, "index", "create", "vec2", "--host", "local", "--collection", "Vec2",
                      "--embed-server", "emb", "--vectorizer", "text2vec-openai",
                      "--http-port", str(plain.http_port), "--grpc-port", str(plain.grpc_port),
                      "--json", check=2)
        error = json.loads(done.stdout)["error"]
        assert "vectorizer" in error and "has no module text2vec-openai" in error, error
        assert snapshot(lab) == before
    finally:
        plain.stop()
