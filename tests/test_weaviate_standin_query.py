"""The Weaviate stand-in driven by the real weaviate-client v4, part 2: queries (near vector,
bm25, hybrid, filters and their errors, multiple target vectors, the search paths agreeing)
and backups, on the session's one stand-in (tests/weaviatefixtures.py, shared with part 1,
test_weaviate_standin.py)."""

from __future__ import annotations

import uuid

import pytest
import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery, TargetVectors
from weaviate.exceptions import (
    BackupFailedException,
    UnexpectedStatusCodeError,
    WeaviateQueryError,
)

pytest.register_assert_rewrite("weaviatefixtures")  # before its import: a plugin
from weaviate_standin import StandinHandle  # noqa: E402
from weaviatefixtures import CORPUS, docs, fill  # noqa: E402

pytest_plugins = ["weaviatefixtures"]


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

