"""The Indexes view with Pilot, against the Weaviate stand-in (tests/weaviate_standin: the real
REST + gRPC protocol, driven by the real weaviate-client). No embedding server runs here (no
vLLM on the shared box), so the indexes are put in place by hand the way llmops leaves them:
the specs hand-edited into the lab, each collection made by the kind's own `create_collection`
with objects inserted through weaviate-client (vectors of our choosing), and the index's
record on its host written with the kind's own `records` (which collection llmops made, its
data key, the snapshot's dims). Everything the console then does is the real path: observe
through the engine, `Engine.index_query` through the real client.

Two indexes: `docs` embeds with server `emb` (in the lab, never started), so its query fails
and the screen says the embedding server must be up; `kb` has Weaviate's text2vec-openai call
`emb` (the module is enabled in the stand-in) and alpha 0 (BM25 only: the query needs no
vector), so its query answers from the stand-in."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import DataTable, Input, ProgressBar, Static

from llmops.console.app import LlmopsApp
from llmops.console.presenters.index import short_backup
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.index_query import IndexQueryScreen, query_inputs
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.index import records
from llmops.ops.kinds.index.schema import create_collection
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.vectorizer import module_for
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

EMB_MODEL = "/models/minilm"
CHUNKS = {
    "gpu.md": "vLLM shards a model across GPUs with tensor parallelism over NVLink.",
    "bread.txt": "Sourdough bread needs a starter of flour and water, fed daily.",
    "garden.md": "Tomatoes want full sun, deep watering and a stake to climb.",
}
VECTORS = {"gpu.md": [1.0, 0.0, 0.0, 0.0], "bread.txt": [0.0, 1.0, 0.0, 0.0],
           "garden.md": [0.0, 0.0, 1.0, 0.0]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Any]:
    from weaviate_standin import start_standin

    handle = start_standin(0, 0, tmp_path / "backups", modules=["text2vec-openai"])
    try:
        yield handle
    finally:
        handle.stop()


def fill(spec: IndexSpec, module: dict[str, Any] | None) -> None:
    """The collection as llmops makes it, holding CHUNKS with VECTORS (real weaviate-client;
    brought vectors: a vectorizer module does not call its server for them)."""
    import weaviate
    from weaviate.classes.data import DataObject

    with weaviate.connect_to_local(port=spec.http_port, grpc_port=spec.grpc_port) as client:
        create_collection(client, spec, module)
        client.collections.get(spec.collection).data.insert_many([
            DataObject(properties={"text": text, "source": source, "chunk": 0,
                                   "doc_sha": source}, vector=VECTORS[source])
            for source, text in CHUNKS.items()])


def lab_with_indexes(tmp_path: Path, standin: Any) -> Path:
    """Host local (an action), server emb and indexes docs and kb (hand edits), their
    collections filled and their records on the host written."""
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    ports = {"http_port": standin.http_port, "grpc_port": standin.grpc_port}
    docs = IndexSpec.model_validate({"name": "docs", "host": "local", "collection": "Docs",
                                     "embed_server": "emb", "alpha": 0.5, **ports})
    kb = IndexSpec.model_validate({"name": "kb", "host": "local", "collection": "Kb",
                                   "vectorizer": "text2vec-openai", "embed_server": "emb",
                                   "alpha": 0.0, **ports})
    lab = Lab(path)
    engine = Engine(lab)
    try:
        (path / "servers").mkdir()
        (path / "servers" / "emb.toml").write_text(
            f'host = "local"\nmodel = "{EMB_MODEL}"\nport = {free_port()}\n\n[args]\n'
            'runner = "pooling"\n')
        rels = ["servers/emb.toml"] + [lab.write_spec("index", s.name, s) for s in (docs, kb)]
        lab.commit("hand edit: server emb, indexes docs and kb", rels)
        t, facts = engine.hosts.transport("local"), host_facts(engine.hosts, "local")
        for spec, model in ((docs, EMB_MODEL), (kb, EMB_MODEL)):
            fill(spec, module_for(spec, engine.hosts))
            key = spec.data_key(model)
            records.write(t, facts, spec.name, {
                "collection": spec.collection, "data_key": key,
                "snapshots": {key: {"count": len(CHUNKS), "dims": 4}}})
    finally:
        engine.close()
        lab.close()
    return path


async def indexes_of(pilot: Any, app: LlmopsApp) -> ResourceVerbs:
    await opened(pilot)
    await pilot.press("5")
    assert app.main is not None
    view = app.main.view("indexes")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "index"
    return view


def observed(view: ResourceVerbs, name: str) -> bool:
    row = view.rows.get(name)
    return row is not None and row.summary is not None and not row.in_flight


async def query(pilot: Any, screen: IndexQueryScreen, text: str) -> None:
    screen.query_one("#query-text", Input).value = text
    screen.query_one("#query-text", Input).focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.answered is not None and not screen.searching, 90,
                   f"the answer to {text!r}")


async def test_rows_detail_and_the_query_screen(tmp_path: Path, standin: Any) -> None:
    app = LlmopsApp(lab_with_indexes(tmp_path, standin))
    async with app.run_test(size=SIZE) as pilot:
        view = await indexes_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "docs") and observed(view, "kb"), 90,
                       "both indexes observed")
        table = view.query_one(ResourceTable)
        for name, collection, alpha in (("docs", "Docs", "0.5"), ("kb", "Kb", "0")):
            cells = [str(c) for c in table.get_row(name)]
            assert cells[:3] == [name, "local", collection]
            assert cells[3].endswith("ready") and cells[4:] == ["3", "4", "-", alpha], cells
        assert {"new", "edit", "remove", "query", "ingest", "rollback"} <= footer_keys(app)

        table.move_cursor(row=table.get_row_index("docs"))
        await pilot.pause()
        title = shown_text(view.query_one("#detail-title"))
        assert "docs · Docs on local · ready" in title
        assert f":{standin.http_port} grpc :{standin.grpc_port}" in title
        assert "server emb" in title and "alpha 0.5" in title and "3 · dims 4" in title

        # docs: no embedding server answers, and the screen says so
        await pilot.press("f")
        screen = await on_screen(pilot, IndexQueryScreen)
        assert screen.query_one("#query-alpha", Input).value == "0.5"
        await query(pilot, screen, "sourdough starter")
        assert screen.answered is not None and screen.answered.error
        status = shown_text(screen.query_one("#query-status", Static))
        assert "the search failed" in status and "embedded by server emb" in status
        assert screen.query_one("#query-hits", DataTable).row_count == 0
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)

        # kb: BM25 (alpha 0) from the stand-in, the relevant chunk first
        table.move_cursor(row=table.get_row_index("kb"))
        await pilot.pause()
        await pilot.press("f")
        screen = await on_screen(pilot, IndexQueryScreen)
        assert screen.query_one("#query-alpha", Input).value == "0"
        await query(pilot, screen, "sourdough starter")
        assert screen.answered is not None and screen.answered.error is None, screen.answered
        hits = screen.query_one("#query-hits", DataTable)
        assert hits.row_count >= 1
        first = [str(c) for c in hits.get_row_at(0)]
        assert first[0] == "1" and first[2] == "bread.txt" and "Sourdough" in first[4]
        assert float(first[1]) > 0
        assert "chunk" in shown_text(screen.query_one("#query-status", Static))

        # an alpha out of range is refused on the screen, before any search
        screen.query_one("#query-alpha", Input).value = "2"
        screen.query_one("#query-text", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "alpha: give a number" in shown_text(screen.query_one("#query-status", Static))
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)


async def test_read_only_keeps_query_but_not_changes(tmp_path: Path, standin: Any) -> None:
    app = LlmopsApp(lab_with_indexes(tmp_path, standin), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await indexes_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "kb"), 90, "kb observed")
        keys = footer_keys(app)
        assert "query" in keys and not {"new", "edit", "remove", "ingest", "rollback"} & keys
        view.query_one(ResourceTable).move_cursor(
            row=view.query_one(ResourceTable).get_row_index("kb"))
        await pilot.press("f")
        screen = await on_screen(pilot, IndexQueryScreen)
        await query(pilot, screen, "tensor parallelism")
        assert screen.answered is not None and screen.answered.hits
        assert screen.answered.hits[0]["source"] == "gpu.md"
        close_app_lab(app)


async def test_an_edit_that_loses_the_objects_is_backed_up_first(tmp_path: Path,
                                                                 standin: Any) -> None:
    """Another chunking makes the objects anew: the backup is taken before the dialog (as
    `llmops index create` does) and its id is shown; alpha alone keeps them. Answering no
    changes nothing in the lab; the row names the backup once observed again. The new form
    has its sections, advanced fields folded."""
    path = lab_with_indexes(tmp_path, standin)
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        view = await indexes_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "docs"), 90, "docs observed")
        table = view.query_one(ResourceTable)
        table.move_cursor(row=table.get_row_index("docs"))
        await pilot.pause()
        for field, value, words in (("alpha", "0.7", "keeps the collection's objects"),
                                    ("chunk_size", "400", "holds now is in backup")):
            await pilot.press("e")
            form = await on_screen(pilot, SpecFormScreen)
            form.query_one(f"#field-{field}", Input).value = value
            await wait_for(pilot, lambda f=form: f.spec is not None,
                           what=f"a spec {form.problems}")
            await pilot.press("ctrl+s")
            confirm = await on_screen(pilot, ConfirmScreen, 60)
            body = shown_text(confirm.query_one("#confirm-body"))
            assert words in body, body
            await pilot.press("n")
            await on_screen(pilot, MainScreen)
        backup = body.split("in backup")[1].split()[0]
        assert backup.startswith("docs") and (tmp_path / "backups" / backup).is_dir()
        lab = Lab(path)
        try:
            assert lab.read_spec("index", "docs") == view.rows["docs"].spec  # unchanged
        finally:
            lab.close()
        view.refresh_data()  # observed again: the row names the newest backup
        await wait_for(pilot, lambda: str(table.get_row("docs")[6]) == short_backup(backup),
                       60, f"last backup {backup}")

        await pilot.press("n")  # the new form: sections, advanced fields folded
        form = await on_screen(pilot, SpecFormScreen)
        assert [f.name for f in form.fields][:5] == ["name", "host", "launch", "http_port",
                                                     "grpc_port"]
        sections = {str(label.render()) for label in form.query(".form-section")}
        assert {"Instance", "Collection", "Embedding", "Ingest"} <= sections
        assert not form.query_one("#row-ef").display and form.query_one("#row-alpha").display
        for field, value in (("name", "faq"), ("collection", "Faq"), ("embed_server", "emb")):
            form.query_one(f"#field-{field}", Input).value = value
        await wait_for(pilot, lambda: form.spec is not None, what=f"a spec {form.problems}")
        assert isinstance(form.spec, IndexSpec) and form.spec.host == "local"  # the only host
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)


def test_the_ingest_bar_and_the_recall_points() -> None:
    """Pure: the progress bar's words from the worker's counts; evals as chart points."""
    from llmops.console.widgets.recall_chart import evals_of, ingest_bar
    from llmops.ops.kinds.index.progress import eval_points

    assert ingest_bar([{"n": 1, "recall": 1.0}]) is None
    counts = {"chunks_done": 40, "chunks_total": 100, "docs_done": 3, "docs_total": 10,
              "chunks_per_s": 20.04, "docs_per_s": 1.5, "running": True}
    bar = ingest_bar([{"n": 1}, {"ingest": counts}])
    assert bar is not None and bar[:2] == (40.0, 100.0)
    words = bar[2].plain
    assert "documents 3/10" in words and "chunks 40/100" in words and "20.0 chunks/s" in words
    assert "1.50 docs/s" in words and "ingesting" in words
    stopped = ingest_bar([{"ingest": {**counts, "running": False}}])
    assert stopped is not None and "the next ingest resumes it" in stopped[2].plain
    done = ingest_bar([{"ingest": {**counts, "chunks_done": 100, "running": False}}])
    assert done is not None and done[2].plain.endswith("done")
    history = [{"recall": 0.5, "mrr": 0.4, "k": 1, "commit": "b" * 40, "alpha": 0.0},
               {"recall": 1.0, "mrr": 1.0, "k": 1, "commit": "a" * 40, "alpha": 0.5}]
    points = eval_points(history)  # kept newest first; drawn oldest first
    assert [(p["n"], p["recall"], p["commit"]) for p in points] == [(1, 1.0, "a" * 12),
                                                                    (2, 0.5, "b" * 12)]
    assert evals_of([*points, {"ingest": counts}]) == points


def test_query_inputs() -> None:
    assert query_inputs("0.25", "7") == (0.25, 7)
    for alpha, k, word in (("x", "5", "alpha"), ("1.5", "5", "alpha"), ("0.5", "0", "k"),
                           ("0.5", "x", "k"), ("0.5", "101", "k")):
        with pytest.raises(ValueError, match=f"^{word}: give"):
            query_inputs(alpha, k)


# -- with the session's embedding server (a real CPU vLLM, test_index_support.py) -------------
EVALS = [{"query": "the relay on shelf 3", "expected": ["note-003.txt"]},
         {"query": "gauge number 130 checked", "expected": ["note-004.txt"]}]


@pytest.mark.timeout(1500)  # it may start the session's embedding vLLM
async def test_the_ingest_key_its_progress_bar_and_the_recall_chart(
        tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`i` on an index opens its ingest screen; Enter runs the journalled ingest (a detached
    worker) while the bar follows its counts to the end; the recall history of two evals is
    drawn; the row's detail pane keeps the bar (done) after the screen is closed."""
    import json

    from labtools import llmops
    from test_index_support import KEY_ENV, act, embedding_setup, start_standin
    from test_index_worker import corpus

    from llmops.console.screens.index_ingest import IndexIngestScreen
    from llmops.console.widgets.recall_chart import RecallChart

    setup = embedding_setup(tmp_path_factory, pytestconfig)
    lab, env = setup.lab, setup.env
    handle = start_standin(setup.root / "console-backups", api_key=setup.key)
    try:
        docs = corpus(setup.root / "console-docs", 0, 6)
        queries = setup.root / "console-queries.jsonl"
        queries.write_text("".join(json.dumps(q) + "\n" for q in EVALS))
        act(lab, "index", "create", "shelf", "--host", "local", "--collection", "Shelf",
            "--embed-server", "emb", "--http-port", str(handle.http_port), "--grpc-port",
            str(handle.grpc_port), "--api-key-env", KEY_ENV, "--source", str(docs),
            "--chunk-size", "150", "--chunk-overlap", "0", "--batch-size", "4", env=env)
        for alpha in ("0.3", "0"):
            act(lab, "index", "create", "shelf", "--alpha", alpha, env=env)
            llmops(lab, "index", "eval", "shelf", "--queries", str(queries), "--k", "1",
                   env=env)
        corpus(docs, 6, 14)  # new documents for the console's ingest
        monkeypatch.setenv(KEY_ENV, setup.key)
        app = LlmopsApp(lab)
        async with app.run_test(size=SIZE) as pilot:
            view = await indexes_of(pilot, app)
            await wait_for(pilot, lambda: observed(view, "shelf"), 90, "shelf observed")
            table = view.query_one(ResourceTable)
            table.move_cursor(row=table.get_row_index("shelf"))
            await pilot.pause()
            await pilot.press("i")
            screen = await on_screen(pilot, IndexIngestScreen)
            chart = screen.query_one(RecallChart)
            await wait_for(pilot, lambda: chart.point_count == 4, 30, "two evals drawn")
            assert chart.drawn[0][0] == (1.0, 2.0)  # recall@1 per eval, oldest first
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.ended is not None, 600, "the ingest")
            ended = screen.ended
            assert ended is not None and ended.status == "succeeded", ended
            assert not ended.failed_checks, ended.failed_checks
            await wait_for(pilot, lambda: "done" in shown_text(
                screen.query_one("#ingest-words")), 30, "the bar's last counts")
            words = shown_text(screen.query_one("#ingest-words"))
            assert "documents 14/14" in words and "chunks/s" in words and "docs/s" in words
            bar = screen.query_one("#ingest-bar", ProgressBar)
            assert bar.total and bar.progress == bar.total
            assert "added" in shown_text(screen.query_one("#ingest-line"))
            await pilot.press("escape")
            await on_screen(pilot, MainScreen)
            await wait_for(pilot, lambda: view.query_one("#detail-bar-row").display, 60,
                           "the row's progress bar")
            assert "done" in shown_text(view.query_one("#detail-bar-words"))
            close_app_lab(app)
    finally:
        llmops(lab, "index", "remove", "shelf", check=None, env=env, timeout=300)
        handle.stop()


def test_the_query_screen_shows_the_rerankers_score_beside_the_hybrids() -> None:
    """Pure: with a rerank server the hits table has a rerank column after the score."""
    from llmops.console.screens.index_query import hit_columns, hit_row, needs_text

    base = {"name": "docs", "host": "local", "collection": "Docs", "embed_server": "emb"}
    plain = IndexSpec.model_validate(base)
    ranked = IndexSpec.model_validate({**base, "rerank_server": "emb", "rerank_depth": 8})
    hit = {"score": 0.5, "rerank_score": 0.91234, "source": "a.md", "chunk": 2,
           "text": "word " * 60}
    assert hit_columns(plain) == ("#", "score", "source", "chunk", "text")
    assert hit_columns(ranked) == ("#", "score", "rerank", "source", "chunk", "text")
    row = hit_row(ranked, 1, hit)
    assert row[:3] == ["1", "0.500", "0.912"] and str(row[3]) == "a.md"
    assert str(row[-1]).endswith("…") and len(str(row[-1])) == 160
    assert [str(c) for c in hit_row(plain, 1, {**hit, "rerank_score": None})][:2] == ["1",
                                                                                     "0.500"]
    assert "reranked by server emb" in needs_text(ranked)
