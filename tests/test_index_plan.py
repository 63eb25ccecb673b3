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
