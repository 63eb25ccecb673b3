"""The collection as weaviate-client v4 makes it: llmops's own properties (text, source,
chunk, doc_sha) plus the spec's, one vector ("default": self-provided, or made by Weaviate's
text2vec-openai module) in an HNSW index with the spec's distance, ef and maxConnections."""

from __future__ import annotations

from typing import Any

from llmops.ops.kinds.index.spec import IndexSpec

VECTOR = "default"
"""The name weaviate-client gives an unnamed self-provided vector."""


def _data_type(kind: str) -> Any:
    from weaviate.classes.config import DataType

    return {"text": DataType.TEXT, "int": DataType.INT, "number": DataType.NUMBER,
            "boolean": DataType.BOOL, "date": DataType.DATE}[kind]


def create_collection(client: Any, spec: IndexSpec, module: dict[str, Any] | None = None
                      ) -> None:
    """`module`: text2vec-openai's settings (vectorizer.module_settings) when Weaviate embeds;
    a self-provided vector otherwise."""
    from weaviate.classes.config import (
        Configure,
        DataType,
        Property,
        Tokenization,
        VectorDistances,
    )

    distance = {"cosine": VectorDistances.COSINE, "dot": VectorDistances.DOT,
                "l2-squared": VectorDistances.L2_SQUARED}[spec.distance]
    properties = [
        Property(name="text", data_type=DataType.TEXT),
        # whole-value tokens: a word-tokenised "a.md" filters as "md" (stopword "a" dropped)
        Property(name="source", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
        Property(name="chunk", data_type=DataType.INT),
        Property(name="doc_sha", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
        *(Property(name=p.name, data_type=_data_type(p.type)) for p in spec.properties),
    ]
    hnsw = Configure.VectorIndex.hnsw(distance_metric=distance, ef=spec.ef,
                                      max_connections=spec.max_connections)
    client.collections.create(
        spec.collection,
        description=f"llmops index {spec.name}",
        properties=properties,
        vector_config=Configure.Vectors.text2vec_openai(name=VECTOR, vector_index_config=hnsw,
                                                        **module) if module
        else Configure.Vectors.self_provided(vector_index_config=hnsw),
    )


def update_ef(client: Any, collection: str, ef: int) -> None:
    from weaviate.classes.config import Reconfigure

    client.collections.get(collection).config.update(
        vector_config=Reconfigure.Vectors.update(
            name=VECTOR, vector_index_config=Reconfigure.VectorIndex.hnsw(ef=ef)
        )
    )


def count_of(client: Any, collection: str) -> int:
    return int(client.collections.get(collection).aggregate.over_all(total_count=True)
               .total_count or 0)


def dims_of(client: Any, collection: str) -> int | None:
    """The length of one object's vector (None: no objects)."""
    found = client.collections.get(collection).query.fetch_objects(limit=1, include_vector=True)
    if not found.objects:
        return None
    vector = found.objects[0].vector
    if isinstance(vector, dict):
        vector = next(iter(vector.values()), None)
    return len(vector) if vector else 0
