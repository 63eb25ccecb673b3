"""The Weaviate stand-in driven by the real weaviate-client v4: the calls llmops's index kind
makes (connect, schema, insert, batch, queries, aggregate, delete by filter, backups,
references, iterators), on one stand-in for the module, with small fixed vectors so no
embedding model is needed. The stand-in as an instance and a process of its own:
test_weaviate_standin_process.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
from weaviate.classes.init import Auth
from weaviate.classes.query import Filter, MetadataQuery, QueryReference, Sort, TargetVectors
from weaviate.collections.classes.batch import BatchObjectReturn
from weaviate.exceptions import (
    BackupFailedException,
    UnexpectedStatusCodeError,
    WeaviateQueryError,
)
from weaviate_standin import StandinHandle, start_standin

TESTS = Path(__file__).parent
REPO = TESTS.parent


def connect(handle: StandinHandle, key: str | None = None) -> weaviate.WeaviateClient:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=handle.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=handle.grpc_port, grpc_secure=False,
        auth_credentials=Auth.api_key(key) if key else None, skip_init_checks=False)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinHandle]:
    handle = start_standin(0, 0, tmp_path_factory.mktemp("backups"))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
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


def test_near_vector_distances(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    res = coll.query.near_vector([1.0, 0.0, 0.0], limit=3,
                                 return_metadata=MetadataQuery(distance=True, certainty=True))
    assert [o.uuid for o in res.objects] == [ids[0], ids[1], ids[2]]
    assert [round(o.metadata.distance, 5) for o in res.objects] == [0.0, 0.2, 1.0]
    assert [round(o.metadata.certainty, 5) for o in res.objects] == [1.0, 0.9, 0.5]
    near = coll.query.near_vector([1.0, 0.0, 0.0], distance=0.5)
    assert [o.uuid for o in near.objects] == [ids[0], ids[1]]
    with pytest.raises(WeaviateQueryError, match="vector lengths don't match"):
        coll.query.near_vector([1.0, 0.0])


def test_bm25_ranks_and_scores(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    res = coll.query.bm25("cat mat", return_metadata=MetadataQuery(score=True,
                                                                   explain_score=True))
    assert [o.uuid for o in res.objects] == [ids[0], ids[3]]  # "cats" is another word
    assert res.objects[0].metadata.score > res.objects[1].metadata.score > 0
    assert "BM25F_cat_frequency:1" in res.objects[0].metadata.explain_score
    assert coll.query.bm25("the and a").objects == []  # only stopwords
    from weaviate.classes.query import BM25Operator
    both = coll.query.bm25("vectors cat", operator=BM25Operator.and_())
    assert [o.uuid for o in both.objects] == [ids[3]]


def test_hybrid_alpha(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    vec = [0.0, 1.0, 0.0]
    keyword = coll.query.hybrid("cat", vector=vec, alpha=0.0)
    assert [o.uuid for o in keyword.objects] == [ids[0], ids[3]]
    vector = coll.query.hybrid("cat", vector=vec, alpha=1.0, limit=2)
    assert [o.uuid for o in vector.objects] == [ids[2], ids[1]]
    mixed = coll.query.hybrid("cat", vector=vec, alpha=0.5,
                              return_metadata=MetadataQuery(score=True, explain_score=True))
    scores = {o.uuid: round(o.metadata.score, 4) for o in mixed.objects}
    # relativeScoreFusion: vector 1-distance normalised over [0, 1]; bm25 over its own range
    assert scores[ids[2]] == 0.5 and scores[ids[0]] == 0.5
    assert "Hybrid (Result Set" in mixed.objects[0].metadata.explain_score
    with pytest.raises(WeaviateQueryError, match="without vectorizer"):
        coll.query.hybrid("cat", alpha=0.5)


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


def test_word_tokenized_filter_matches_like_weaviate(client: weaviate.WeaviateClient,
                                                     name: str) -> None:
    """Weaviate tokenizes a word-tokenized text's filter value and drops stopwords: Equal
    ("a.md") is Equal("md"), which b.md matches too. A source path needs FIELD tokenization."""
    coll = client.collections.create(name, properties=[
        Property(name="source", data_type=DataType.TEXT)])
    coll.data.insert_many([{"source": "a.md"}, {"source": "b.md"}, {"source": "c.txt"}])
    res = coll.query.fetch_objects(filters=Filter.by_property("source").equal("a.md"))
    assert sorted(o.properties["source"] for o in res.objects) == ["a.md", "b.md"]
    with pytest.raises(WeaviateQueryError, match="only stopwords"):
        coll.query.fetch_objects(filters=Filter.by_property("source").equal("a"))


def test_filters_and_their_errors(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    by_id = coll.query.fetch_objects(filters=Filter.by_id().equal(ids[1]))
    assert [o.uuid for o in by_id.objects] == [ids[1]]
    both = coll.query.fetch_objects(filters=Filter.by_property("n").greater_or_equal(1)
                                    & Filter.by_property("text").contains_any(["vectors"]))
    assert sorted(o.uuid for o in both.objects) == sorted([ids[2], ids[3]])
    other = coll.query.fetch_objects(filters=Filter.by_property("source").not_equal(
        "pets/cat.md"))
    assert len(other.objects) == 3
    with pytest.raises(WeaviateQueryError, match="no such prop with name 'nope'"):
        coll.query.fetch_objects(filters=Filter.by_property("nope").equal("x"))
    with pytest.raises(WeaviateQueryError, match="could not find class"):
        client.collections.get("Missing").query.fetch_objects()


def test_backup_create_and_restore(client: weaviate.WeaviateClient, name: str,
                                   standin: StandinHandle) -> None:
    coll = docs(client, name)
    ids = fill(coll)
    backup_id = f"b-{uuid.uuid4().hex[:8]}"
    made = client.backup.create(backup_id, "filesystem", include_collections=[name],
                                wait_for_completion=True)
    assert made.status.value == "SUCCESS" and made.collections == [name]
    assert (standin.app.backups.root / backup_id).is_dir()
    assert client.backup.get_create_status(backup_id, "filesystem").status.value == "SUCCESS"
    with pytest.raises(UnexpectedStatusCodeError, match="already exists"):
        client.backup.create(backup_id, "filesystem", include_collections=[name])
    with pytest.raises(BackupFailedException, match="already exists"):
        client.backup.restore(backup_id, "filesystem", wait_for_completion=True)
    client.collections.delete(name)
    back = client.backup.restore(backup_id, "filesystem", wait_for_completion=True)
    assert back.status.value == "SUCCESS"
    coll = client.collections.get(name)
    assert len(coll) == 4
    one = coll.query.fetch_object_by_id(ids[0], include_vector=True)
    assert one is not None and one.vector["default"] == CORPUS[0][2]
    with pytest.raises(UnexpectedStatusCodeError, match="404"):
        client.backup.restore("never-made", "filesystem")


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


def test_multi_target_vectors(client: weaviate.WeaviateClient, name: str) -> None:
    coll = client.collections.create(name, vector_config=[
        Configure.Vectors.self_provided(name="a", vector_index_config=Configure.VectorIndex.hnsw(
            distance_metric=VectorDistances.L2_SQUARED)),
        Configure.Vectors.self_provided(name="b", vector_index_config=Configure.VectorIndex.hnsw(
            distance_metric=VectorDistances.L2_SQUARED))])
    one = coll.data.insert({}, vector={"a": [0.0, 0.0], "b": [1.0, 1.0]})
    two = coll.data.insert({}, vector={"a": [1.0, 0.0], "b": [0.0, 0.0]})
    with pytest.raises(WeaviateQueryError, match="multiple vectors"):
        coll.query.near_vector([0.0, 0.0])
    summed = coll.query.near_vector([0.0, 0.0], target_vector=TargetVectors.sum(["a", "b"]),
                                    return_metadata=MetadataQuery(distance=True))
    assert [(o.uuid, o.metadata.distance) for o in summed.objects] == [(two, 1.0), (one, 2.0)]
    least = coll.query.near_vector([0.0, 0.0], target_vector=["a", "b"],
                                   return_metadata=MetadataQuery(distance=True))
    assert {o.metadata.distance for o in least.objects} == {0.0}


def test_vector_search_paths_agree(client: weaviate.WeaviateClient, name: str) -> None:
    """The numpy path (many candidates) and the plain one (few) give the same distances."""
    coll = docs(client, name)
    rows = [[float(i % 7), float(i % 5) - 2.0, 1.0 + i / 10] for i in range(40)]
    res = coll.data.insert_many([DataObject(properties={"text": f"t{i}", "source": "s",
                                                        "n": i}, vector=v)
                                 for i, v in enumerate(rows)])
    assert not res.has_errors
    query = [1.0, -1.0, 2.0]
    many = coll.query.near_vector(query, limit=40, return_metadata=MetadataQuery(distance=True))
    few = coll.query.near_vector(query, limit=40, filters=Filter.by_property("n").less_than(10),
                                 return_metadata=MetadataQuery(distance=True))

    def cosine(v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(v, query, strict=True))
        return 1 - dot / (sum(a * a for a in v) ** 0.5 * sum(b * b for b in query) ** 0.5)

    by_n = {o.properties["n"]: o.metadata.distance for o in many.objects}
    assert all(abs(by_n[i] - cosine(v)) < 1e-5 for i, v in enumerate(rows))
    assert all(abs(o.metadata.distance - by_n[o.properties["n"]]) < 1e-5 for o in few.objects)
    assert len(few.objects) == 10


def test_iterator_walks_every_object(client: weaviate.WeaviateClient, name: str) -> None:
    coll = docs(client, name)
    coll.data.insert_many([{"text": f"t{i}", "source": "s", "n": i} for i in range(23)])
    seen = [o.properties["n"] for o in coll.iterator()]
    assert sorted(seen) == list(range(23))
    ordered = coll.query.fetch_objects(sort=Sort.by_property("n", ascending=False), limit=3)
    assert [o.properties["n"] for o in ordered.objects] == [22, 21, 20]
