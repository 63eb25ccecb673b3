"""The Weaviate stand-in tests' one stand-in and client (a pytest plugin:
`pytest_plugins = ["weaviatefixtures"]` in tests/test_weaviate_standin.py and
tests/test_weaviate_standin_query.py, so the two parts share ONE stand-in for the session
instead of starting one each), and the helpers both use: a collection name of each test's own
(dropped after it), the `docs` collection and its four-object corpus with fixed vectors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import Auth
from weaviate_standin import StandinHandle, start_standin


def connect(handle: StandinHandle, key: str | None = None) -> weaviate.WeaviateClient:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=handle.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=handle.grpc_port, grpc_secure=False,
        auth_credentials=Auth.api_key(key) if key else None, skip_init_checks=False)


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinHandle]:
    handle = start_standin(0, 0, tmp_path_factory.mktemp("backups"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def client(standin: StandinHandle) -> Iterator[weaviate.WeaviateClient]:
    with connect(standin) as c:
        yield c


@pytest.fixture
def name(client: weaviate.WeaviateClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A collection name of this test's own, dropped afterwards."""
    coll = "T" + request.node.name.replace("test_", "").title().replace("_", "")[:40]
    coll = "".join(ch for ch in coll if ch.isalnum())
    yield coll
    client.collections.delete(coll)


def docs(client: weaviate.WeaviateClient, name: str,
         distance: VectorDistances = VectorDistances.COSINE):
    """Text + source (field tokenization: exact match) + n, one self-provided vector."""
    return client.collections.create(
        name,
        properties=[Property(name="text", data_type=DataType.TEXT),
                    Property(name="source", data_type=DataType.TEXT,
                             tokenization=Tokenization.FIELD),
                    Property(name="n", data_type=DataType.INT)],
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=distance, ef=64,
                                                           max_connections=16)))


CORPUS = [
    ("the cat sat on the mat", "pets/cat.md", [1.0, 0.0, 0.0]),
    ("dogs chase cats in the park", "pets/dog.md", [0.8, 0.6, 0.0]),
    ("weaviate stores vectors and text", "db/weaviate.md", [0.0, 1.0, 0.0]),
    ("vectors of floats and a cat", "db/vectors.md", [0.0, 0.0, 1.0]),
]


def fill(coll) -> list[uuid.UUID]:
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, src) for _, src, _ in CORPUS]
    res = coll.data.insert_many([
        DataObject(properties={"text": t, "source": s, "n": i}, vector=v, uuid=u)
        for i, ((t, s, v), u) in enumerate(zip(CORPUS, ids, strict=True))])
    assert not res.has_errors, res.errors
    return ids
