"""The index kind's pure parts, from data files: plan steps, admission, the state word and
chunking.

A case is `tests/cases/index/<name>.toml`; the index is named `docs`, and specs start from
BASE (host local, collection Docs, embed_server emb, source /data/docs) unless they say.
- plan cases: `[desired]` and/or `[current]` (index specs), `[observed]` (IndexObserved; a
  `data_key` of "desired" or "current", here or in a backup, stands for that spec's data key
  with the observed embed_model; `proc_hash = "desired"` for the desired launch hash), and
  `[[steps]]` (verb, and where given detail_has, argv_has, and `data`: step data that must
  match, "desired"/"current" again standing for data keys).
- admit cases: `[desired]`, optional `[server]` (server emb on host local: its fields),
  `[[others]]` (other specs: kind = "server" | "index", plus fields), and
  `[expect_error] field, contains = [...]` or `[expect_ok]`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pydantic
import pytest

from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.index import IndexKind, IndexSpec, plan_index
from llmops.ops.kinds.index.chunking import chunk_document, chunk_id, documents, split_text
from llmops.ops.kinds.index.launch import launch_hash
from llmops.ops.kinds.index.observed import IndexObserved
from llmops.ops.kinds.index.summary import index_state
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.kinds import admit_dependencies

CASES = sorted((Path(__file__).parent / "cases" / "index").glob("*.toml"))
BASE = {"host": "local", "collection": "Docs", "embed_server": "emb", "source": "/data/docs"}
MODEL = "/models/minilm"


def load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def spec_of(case: dict[str, Any], key: str) -> IndexSpec | None:
    data = case.get(key)
    if data is None:
        return None
    fields = {"name": "docs", **BASE, **data}
    return IndexSpec.model_validate({k: v for k, v in fields.items() if v is not False})


def keys_of(case: dict[str, Any], model: str | None) -> dict[str, str]:
    found = {}
    for which in ("desired", "current"):
        spec = spec_of(case, which)
        if spec is not None:
            found[which] = spec.data_key(model)
    return found


def observed_of(case: dict[str, Any]) -> IndexObserved:
    raw = dict(case.get("observed", {}))
    raw.setdefault("embed_model", MODEL)
    keys = keys_of(case, raw["embed_model"])
    if raw.get("data_key") in keys:
        raw["data_key"] = keys[raw["data_key"]]
    for backup in raw.get("backups", {}).values():
        if backup.get("data_key") in keys:
            backup["data_key"] = keys[backup["data_key"]]
    desired = spec_of(case, "desired")
    if raw.get("proc_hash") == "desired" and desired is not None:
        raw["proc_hash"] = launch_hash(desired)
    return IndexObserved.model_validate(raw)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case or "expect_ok" in case:
        check_admit_case(case)
    else:
        check_plan_case(case)


def check_plan_case(case: dict[str, Any]) -> None:
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    observed = observed_of(case)
    steps = plan_index(desired, current, observed)
    expected = case.get("steps", [])
    got = [s.verb for s in steps]
    assert got == [e["verb"] for e in expected], f"steps: {[(s.verb, s.detail) for s in steps]}"
    keys = keys_of(case, observed.embed_model)
    for step, exp in zip(steps, expected, strict=True):
        if "detail_has" in exp:
            assert exp["detail_has"] in step.detail, step.detail
        for part in exp.get("argv_has", []):
            assert part in step.argv, step.argv
        if "argv" in exp:
            assert list(step.argv) == exp["argv"], step.argv
        if "env" in exp:
            assert dict(getattr(step.data, "env", {})) == exp["env"], step.data
        for key, value in exp.get("data", {}).items():
            value = keys.get(value, value) if key == "data_key" else value
            assert getattr(step.data, key, None) == value, (key, step)
    if "state" in case:
        spec = desired or current
        assert spec is not None
        assert index_state(spec, observed) == case["state"]


def context_of(case: dict[str, Any]) -> Context:
    desired: dict[tuple[str, str], Any] = {("host", "local"): HostSpec(name="local", local=True)}
    server = case.get("server", {"args": {"runner": "pooling"}})
    if server is not False:
        desired[("server", "emb")] = ServerSpec(name="emb", host="local", model=MODEL,
                                                port=8000, **server)
    for other in case.get("others", []):
        other = dict(other)
        kind = other.pop("kind")
        if kind == "server":
            desired[("server", other["name"])] = ServerSpec(**{"host": "local", **other})
        elif kind == "host":
            desired[("host", other["name"])] = HostSpec(**other)
        else:
            desired[("index", other["name"])] = IndexSpec(**{**BASE, **other})
    return Context(desired, lambda kind, name: None)


def admit(kind: IndexKind, spec: IndexSpec, context: Context) -> None:
    """What the engine checks before anything is written: dependencies, then the kind."""
    admit_dependencies(kind, ("index", spec.name), spec, context)
    kind.admit(spec, context)


def check_admit_case(case: dict[str, Any]) -> None:
    kind = IndexKind()
    try:
        spec = spec_of(case, "desired")
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field, message = (str(err["loc"][0]) if err["loc"] else ""), str(err["msg"])
    else:
        assert spec is not None
        context = context_of(case)
        if "expect_ok" in case:
            admit(kind, spec, context)
            return
        with pytest.raises(SpecError) as info:
            admit(kind, spec, context)
        field, message = info.value.field, str(info.value)
    expect = case["expect_error"]
    assert field == expect["field"], message
    for part in expect.get("contains", []):
        assert part in message, message


def test_every_case_is_read() -> None:
    assert len(CASES) >= 30


# -- chunking (pure) --------------------------------------------------------------------------
def test_chunks_cover_the_text_within_size_with_overlap() -> None:
    text = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(80))
    pieces = split_text(text, 200, 40)
    assert all(len(p) <= 200 for p in pieces)
    assert len(pieces) > 5
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert after.split()[0] in before  # each piece starts inside the one before
    words = set(text.split())
    assert words == set(" ".join(pieces).split())


def test_no_overlap_and_tiny_texts() -> None:
    assert split_text("", 100, 10) == []
    assert split_text("  one line  ", 100, 10) == ["one line"]
    pieces = split_text("a" * 250, 100, 0)
    assert "".join(pieces) == "a" * 250


def test_ids_depend_on_collection_source_and_text_only() -> None:
    a = chunk_id("Docs", "a.md", "hello")
    assert a == chunk_id("Docs", "a.md", "hello")
    assert len({a, chunk_id("Other", "a.md", "hello"), chunk_id("Docs", "b.md", "hello"),
                chunk_id("Docs", "a.md", "hello!")}) == 4


def test_a_changed_document_keeps_the_ids_of_its_unchanged_chunks() -> None:
    body = [f"Paragraph {i}. " + "words " * 30 for i in range(6)]
    old = chunk_document("Docs", "a.md", "\n\n".join(body), 220, 0)
    body[4] = "Paragraph 4 was rewritten entirely. " + "other " * 28
    new = chunk_document("Docs", "a.md", "\n\n".join(body), 220, 0)
    kept = {c.uuid for c in old} & {c.uuid for c in new}
    assert 0 < len(kept) < len(old)


def test_jsonl_records_are_documents_with_their_fields() -> None:
    raw = '{"id": "q1", "text": "first", "year": 2020}\n\nnot json\n{"content": "second"}\n'
    found = documents("faq.jsonl", raw)
    assert [(s, t) for s, t, _ in found] == [("faq.jsonl#q1", "first"), ("faq.jsonl#4", "second")]
    chunk = chunk_document("Docs", *found[0][:2], 100, 10, found[0][2], ("year",))[0]
    assert chunk.properties() == {"text": "first", "source": "faq.jsonl#q1", "chunk": 0,
                                  "doc_sha": chunk.doc_sha, "year": 2020}


def test_data_key_names_what_the_objects_depend_on() -> None:
    spec = IndexSpec.model_validate({"name": "docs", **BASE})
    key = spec.data_key(MODEL)
    assert key == spec.model_copy(update={"alpha": 0.9, "ef": 64}).data_key(MODEL)
    assert key != spec.data_key("/models/other")
    for change in ({"chunk_size": 400}, {"chunk_overlap": 20}, {"distance": "dot"},
                   {"collection": "Docs2"}, {"source": "/data/other"}, {"max_connections": 8}):
        assert key != spec.model_copy(update=change).data_key(MODEL), change


def test_recall_and_mrr() -> None:
    from llmops.ops.kinds.index.evaluate import EvalQuery, parse_queries, score

    queries = [EvalQuery("a", ("x.md",)), EvalQuery("b", ("y.md", "z.md")),
               EvalQuery("c", ("w.md",))]
    ranked = [["x.md", "x.md", "y.md"], ["q.md", "y.md", "y.md", "z.md"], ["q.md"]]
    # chunks of one document collapse: b's top 2 documents are q, y -> recall 1/2, rank 2
    assert score(ranked, queries, 2) == {"recall": round((1 + 0.5 + 0) / 3, 4),
                                         "mrr": round((1 + 0.5 + 0) / 3, 4)}
    assert score(ranked, queries, 3)["recall"] == round((1 + 1 + 0) / 3, 4)
    assert parse_queries('{"query": "q", "expected": "a.md"}\n\n') == [
        EvalQuery("q", ("a.md",))]
    for bad in ("", "not json", '{"query": "q"}', '{"query": "", "expected": ["a"]}'):
        with pytest.raises(ValueError, match="line|no queries"):
            parse_queries(bad)


def test_rerank_scores_reorder_the_hits_and_keep_both_scores() -> None:
    from llmops.ops.kinds.index.query import Hit
    from llmops.ops.kinds.index.rerank import RerankError, parse_scores, reorder

    hits = [Hit("a.md", 0, "a", 0.9, "u1"), Hit("b.md", 0, "b", 0.5, "u2"),
            Hit("c.md", 1, "c", 0.1, "u3")]
    answer = {"results": [{"index": 2, "relevance_score": 0.8},
                          {"index": 0, "relevance_score": 0.3},
                          {"index": 1, "relevance_score": 0.3}]}
    scores = parse_scores(answer, 3)
    assert scores == [0.3, 0.3, 0.8]
    top = reorder(hits, scores, 2)
    assert [(h.source, h.score, h.rerank_score) for h in top] == [
        ("c.md", 0.1, 0.8), ("a.md", 0.9, 0.3)]  # a tie keeps the hybrid order
    for bad, count in (({"results": [{"index": 0, "relevance_score": 1}]}, 2),
                       ({"detail": "no"}, 1), ({"results": [{"index": 0}]}, 1)):
        with pytest.raises(RerankError):
            parse_scores(bad, count)


def test_eval_points_carry_reranked_recall_when_there_is_one() -> None:
    from llmops.ops.kinds.index.progress import eval_points

    history = [{"recall": 0.5, "mrr": 0.6, "rerank": "emb", "rerank_recall": 1.0,
                "rerank_mrr": 1.0, "commit": "b" * 40},
               {"recall": 0.25, "mrr": 0.3, "commit": "a" * 40}]
    points = eval_points(history)
    assert "rerank_recall" not in points[0]
    assert points[1]["rerank_recall"] == 1.0 and points[1]["recall"] == 0.5


@pytest.mark.parametrize(("rc", "out", "err", "expected"), [
    (0, "true 0 3f2a1b4c5d6e7f80\n", "", (True, True, None)),
    (0, "false 137 3f2a1b4c5d6e7f80\n", "", (True, False, None)),
    (1, "", "Error: No such container: llmops-docs\n", (False, False, None)),
    (1, "", "Error response from daemon: No such object: llmops-docs", (False, False, None)),
    (127, "", "docker: No such file or directory\n", (False, False, "docker: No such file")),
    (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
     (False, False, "Cannot connect to the Docker daemon")),
])
def test_docker_inspect_is_read_as_docker_says(rc: int, out: str, err: str,
                                               expected: tuple[bool, bool, str | None]) -> None:
    """`docker inspect`'s answer -> the container's state; docker missing or its daemon down
    is an error (observe reports it), never taken for "stopped"."""
    from llmops.ops.kinds.index.docker import inspect_argv, logs_argv, parse_inspect

    found = parse_inspect(rc, out, err)
    assert (found.exists, found.running) == expected[:2]
    assert (found.error is None) == (expected[2] is None)
    if expected[2]:
        assert expected[2] in str(found.error)
    spec = IndexSpec.model_validate({"name": "docs", **BASE, "launch": "docker",
                                     "image": "semitechnologies/weaviate:1.32.27",
                                     "data_dir": "/d", "backup_dir": "/b"})
    assert inspect_argv(spec)[-1] == "llmops-docs" and inspect_argv(spec)[:2] == ["docker",
                                                                                   "inspect"]
    assert logs_argv(spec, 5) == ["docker", "logs", "--tail", "5", "llmops-docs"]


def test_the_vectorizer_base_url_is_where_weaviate_calls_from() -> None:
    from llmops.ops.kinds.index.vectorizer import base_url, module_settings

    spec = IndexSpec.model_validate({"name": "docs", **BASE, "vectorizer": "text2vec-openai"})
    local = ServerSpec(name="emb", host="local", model=MODEL, port=8000,
                       args={"runner": "pooling"})
    assert base_url(spec, local, None) == "http://127.0.0.1:8000"
    wide = local.model_copy(update={"listen": "0.0.0.0", "host": "gpu1"})
    assert base_url(spec, wide, "10.0.0.7") == "http://10.0.0.7:8000"
    v6 = local.model_copy(update={"listen": "fd00::7", "host": "gpu1"})
    assert base_url(spec, v6, "10.0.0.7") == "http://[fd00::7]:8000"
    settings = module_settings(spec, local, "http://127.0.0.1:8000")
    assert settings == {"base_url": "http://127.0.0.1:8000", "model": MODEL,
                        "source_properties": ["text"], "vectorize_collection_name": False}
