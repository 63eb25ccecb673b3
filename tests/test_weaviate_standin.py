"""The Weaviate stand-in driven by the real weaviate-client v4, part 1: the calls llmops's
index kind makes to connect, define collections and write (schema, insert, batch, references,
aggregate, delete by filter, iterators), on the session's one stand-in
(tests/weaviatefixtures.py) with small fixed vectors so no embedding model is needed. Part 2,
the queries and backups: test_weaviate_standin_query.py. The stand-in as an instance and a
process of its own: test_weaviate_standin_process.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    Reconfigure,
    ReferenceProperty,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery, QueryReference, Sort
from weaviate.collections.classes.batch import BatchObjectReturn
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
)

pytest.register_assert_rewrite("weaviatefixtures")  # before its import: a plugin
from weaviatefixtures import CORPUS, connect, docs, fill  # noqa: E402

pytest_plugins = ["weaviatefixtures"]
TESTS = Path(__file__).parent
REPO = TESTS.parent
__all__ = ["REPO", "TESTS", "connect", "docs", "fill"]
"""What test_weaviate_standin_process.py imports from here."""


def test_connect_meta_ready_and_nodes(client: weaviate.WeaviateClient) -> None:
    meta = client.get_meta()
    assert meta["version"].startswith("1.32.")
    assert "backup-filesystem" in meta["modules"]
    assert client.is_ready() and client.is_live()
    nodes = client.cluster.nodes(output="verbose")
    assert nodes[0].status == "HEALTHY"


def test_create_collection_config_roundtrip(client: weaviate.WeaviateClient, name: str) -> None:
    docs(client, name, VectorDistances.DOT)
    assert client.collections.exists(name)
    config = client.collections.get(name).config.get()
    assert [(p.name, p.data_type.value) for p in config.properties] == [
        ("text", "text"), ("source", "text"), ("n", "int")]
    assert config.properties[1].tokenization == Tokenization.FIELD
    hnsw = config.vector_config["default"].vector_index_config
    assert (hnsw.ef, hnsw.max_connections, hnsw.distance_metric) == (64, 16,
                                                                     VectorDistances.DOT)
    assert name in client.collections.list_all()
    with pytest.raises(UnexpectedStatusCodeError, match="already exists"):
        docs(client, name)
    client.collections.get(name).config.add_property(Property(name="title",
                                                              data_type=DataType.TEXT))
    client.collections.get(name).config.update(
        vector_config=Reconfigure.Vectors.update(
            name="default", vector_index_config=Reconfigure.VectorIndex.hnsw(ef=99)))
    config = client.collections.get(name).config.get()
    assert config.vector_config["default"].vector_index_config.ef == 99
    assert config.properties[-1].name == "title"
    client.collections.delete(name)
    assert not client.collections.exists(name)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # vectorizer_config, on purpose
def test_unnamed_vector_collection(client: weaviate.WeaviateClient, name: str) -> None:
    """A class-level (unnamed) vector, as older collections and the vectorizer_config API make."""
    coll = client.collections.create(
        name, properties=[Property(name="text", data_type=DataType.TEXT)],
        vectorizer_config=Configure.Vectorizer.none(),
        vector_index_config=Configure.VectorIndex.hnsw(
            distance_metric=VectorDistances.L2_SQUARED))
    assert client.collections.get(name).config.get().vector_index_config.ef == -1
    uid = coll.data.insert({"text": "one"}, vector=[1.0, 2.0])
    coll.data.insert({"text": "two"}, vector=[3.0, 5.0])
    res = coll.query.near_vector([1.0, 1.0], return_metadata=MetadataQuery(distance=True),
                                 include_vector=True)
    assert [o.uuid for o in res.objects][0] == uid
    assert [o.metadata.distance for o in res.objects] == [1.0, 20.0]
    assert res.objects[0].vector["default"] == [1.0, 2.0]


def test_insert_many_and_fetch_objects(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    assert len(coll) == 4
    got = coll.query.fetch_objects(limit=10)
    assert sorted(o.uuid for o in got.objects) == sorted(ids)  # listed by UUID
    assert [o.uuid for o in got.objects] == sorted(ids, key=str)
    page = coll.query.fetch_objects(limit=2, offset=2)
    assert [o.uuid for o in page.objects] == sorted(ids, key=str)[2:]
    one = coll.query.fetch_object_by_id(ids[2], include_vector=True)
    assert one is not None and one.properties == {"text": CORPUS[2][0],
                                                  "source": CORPUS[2][1], "n": 2}
    assert one.vector["default"] == CORPUS[2][2]
    hit = coll.query.fetch_objects(filters=Filter.by_property("source").equal("pets/dog.md"),
                                   return_metadata=MetadataQuery(creation_time=True))
    assert [o.uuid for o in hit.objects] == [ids[1]]
    assert hit.objects[0].metadata.creation_time is not None
    assert coll.query.fetch_objects().objects.__len__() == 4
    assert coll.data.exists(ids[0]) and coll.data.delete_by_id(ids[0])
    assert not coll.data.exists(ids[0])


def test_batch_dynamic_and_fixed_size(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    with coll.batch.fixed_size(batch_size=3) as batch:
        for i in range(7):
            batch.add_object({"text": f"chunk {i}", "source": "f.md", "n": i},
                             vector=[float(i), 1.0, 0.0])
        batch.add_object({"text": "bad", "source": "f.md"}, vector=[1.0, 2.0])  # wrong dims
    assert len(coll.batch.failed_objects) == 1
    assert "vector dimensions do not match" in coll.batch.failed_objects[0].message
    with client.batch.dynamic() as batch:
        for i in range(5):
            batch.add_object(name, {"text": f"more {i}", "source": "g.md", "n": i},
                             vector=[0.0, 1.0, float(i)])
    assert len(client.batch.failed_objects) == 0
    assert coll.aggregate.over_all(total_count=True).total_count == 12


def test_aggregate_total_count(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    fill(coll)
    from weaviate.classes.aggregate import Metrics
    agg = coll.aggregate.over_all(total_count=True, return_metrics=Metrics("n").integer(
        sum_=True, maximum=True))
    assert agg.total_count == 4
    assert (agg.properties["n"].sum_, agg.properties["n"].maximum) == (6, 3)
    some = coll.aggregate.over_all(total_count=True,
                                   filters=Filter.by_property("source").like("pets/*"))
    assert some.total_count == 2


def test_delete_many_by_source(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    res = coll.data.delete_many(where=Filter.by_property("source").equal("pets/cat.md"),
                                verbose=True)
    assert (res.matches, res.successful) == (1, 1)
    assert [o.uuid for o in res.objects] == [ids[0]]
    dry = coll.data.delete_many(where=Filter.by_property("source").contains_any(
        ["pets/dog.md", "db/weaviate.md"]), dry_run=True)
    assert dry.matches == 2 and len(coll) == 3
    coll.data.delete_many(where=Filter.by_property("source").contains_any(
        ["pets/dog.md", "db/weaviate.md"]))
    assert [o.uuid for o in coll.query.fetch_objects().objects] == [ids[3]]


def test_insert_result_types(client: weaviate.WeaviateClient, name: str) -> None:
    """insert_many's return, uuids by index, and a REST insert's conflict on an existing id."""
    coll = docs(client, name)
    res = coll.data.insert_many([{"text": "x", "source": "s", "n": 1}])
    assert isinstance(res, BatchObjectReturn) and list(res.uuids) == [0]
    with pytest.raises(UnexpectedStatusCodeError, match="already exists"):
        coll.data.insert({"text": "y"}, uuid=res.uuids[0], vector=[1.0, 0.0, 0.0])
    with pytest.raises(Exception, match="invalid integer property"):
        coll.data.insert({"n": 1.5}, vector=[1.0, 0.0, 0.0])


def test_references_roundtrip(client: weaviate.WeaviateClient, name: str) -> None:
    target = client.collections.create(name + "To", properties=[
        Property(name="title", data_type=DataType.TEXT)])
    try:
        t1 = target.data.insert({"title": "first"})
        t2 = target.data.insert({"title": "second"})
        source = client.collections.create(name, properties=[
            Property(name="text", data_type=DataType.TEXT)],
            references=[ReferenceProperty(name="cites", target_collection=target.name)])
        s1 = source.data.insert({"text": "a"}, references={"cites": [t1]})
        source.data.insert_many([DataObject(properties={"text": "b"},
                                            references={"cites": [t1, t2]})])
        source.data.reference_add(from_uuid=s1, from_property="cites", to=t2)
        got = source.query.fetch_object_by_id(s1, return_references=QueryReference(
            link_on="cites", return_properties=["title"]))
        assert got is not None
        assert sorted(o.properties["title"] for o in got.references["cites"].objects) == [
            "first", "second"]
        only_b = source.query.fetch_objects(
            filters=Filter.by_ref_count("cites").equal(2) & Filter.by_property("text").equal("b"))
        assert [o.properties["text"] for o in only_b.objects] == ["b"]
        citing_second = source.query.fetch_objects(
            filters=Filter.by_ref("cites").by_property("title").equal("second"))
        assert len(citing_second.objects) == 2
    finally:
        client.collections.delete(name)
        client.collections.delete(name + "To")


def test_iterator_walks_every_object(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    coll.data.insert_many([{"text": f"t{i}", "source": "s", "n": i} for i in range(23)])
    seen = [o.properties["n"] for o in coll.iterator()]
    assert sorted(seen) == list(range(23))
    ordered = coll.query.fetch_objects(sort=Sort.by_property("n", ascending=False), limit=3)
    assert [o.properties["n"] for o in ordered.objects] == [22, 21, 20]
