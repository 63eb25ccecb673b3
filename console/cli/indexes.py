"""`llmops index ...`: Weaviate collections kept by llmops. `create` makes or changes one (a
change that would lose its objects is preceded by a backup whose id the commit names);
`ingest` reads the source folder again; `query` runs a hybrid search; `list`, `show`,
`remove`, `logs`. The API key is only ever named (`--api-key-env NAME` or `--api-key-keyring
SERVICE/USER`), never given."""

from __future__ import annotations

from typing import Any

import click
from rich import box
from rich.table import Column, Table
from rich.text import Text

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    print_rows,
    put_spec,
    refuse_if_read_only,
    remove_resource,
    report_action,
    stream_progress,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.ops.kinds.index.spec import IndexSpec


def properties_given(given: tuple[str, ...], as_json: bool) -> list[dict[str, str]] | None:
    """`--property year=int --property title` -> the spec's list (None: none given)."""
    if not given:
        return None
    found = []
    for item in given:
        name, _, kind = item.partition("=")
        if not name.strip():
            fail(f"--property: {item!r} is not NAME or NAME=TYPE", as_json=as_json)
        found.append({"name": name.strip(), "type": kind.strip() or "text"})
    return found


def state_of(engine: Any, spec: IndexSpec) -> str:
    try:
        return str(engine.status(spec))
    except Exception as exc:  # noqa: BLE001 - the rest of the answer still prints
        return f"unreachable: {exc}"[:100]


@click.group("index")
def index_group() -> None:
    """Weaviate indexes: collections ingested with embeddings from an llmops server, backed
    up before every destructive change, restored on rollback."""


@index_group.command("create")
@click.argument("name", shell_complete=names_of("index"))
@spec_options(IndexSpec, skip={"backup_id"},
              refs={"host": "host", "embed_server": "server", "rerank_server": "server"})
@click.option("--property", "property_", multiple=True, metavar="NAME=TYPE",
              help="An extra property (text, int, number, boolean, date); repeat for more.")
@json_option
def index_create(name: str, property_: tuple[str, ...], as_json: bool, **given: Any) -> None:
    """Create an index (or change one: again with new options). A change of properties,
    distance, chunking, embedding model or source takes a backup first."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("index create")
    try:
        values = given_fields(IndexSpec, given)
    except click.BadParameter as exc:
        fail(f"{exc.param_hint}: {exc.message}", as_json=as_json)
    props = properties_given(property_, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("index", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.pop("backup_id", None)  # set below when this change takes one
        fields.update(values)
        if props is not None:
            fields["properties"] = props
        if current is None and not fields.get("host"):
            fail("a new index needs --host H (where Weaviate runs)", as_json=as_json)
        spec = IndexSpec.model_validate(fields)
        spec = engine.index_backup_for(spec)
        put_spec(engine, "index", spec, "created", as_json)


@index_group.command("ingest")
@click.argument("name", shell_complete=names_of("index"))
@click.option("--source", default=None, metavar="DIR",
              help="Ingest another folder (a change of the spec: backed up first).")
@json_option
def index_ingest(name: str, source: str | None, as_json: bool) -> None:
    """Ingest the index's documents now: new and changed ones are embedded and inserted, the
    chunks of changed or removed ones deleted; unchanged ones cost nothing. A detached worker
    does it (it finishes if this command is killed; one killed itself is resumed here)."""
    refuse_if_read_only("index ingest")
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "index", name, as_json)
        assert isinstance(spec, IndexSpec)
        if source is not None:
            changed = IndexSpec.model_validate({**spec.model_dump(), "backup_id": None,
                                                "source": source})
            put_spec(engine, "index", engine.index_backup_for(changed), "created", as_json)
        stream_progress(engine, as_json)
        report_action(engine.index_ingest(name), as_json)


@index_group.command("query")
@click.argument("name", shell_complete=names_of("index"))
@click.argument("text")
@click.option("--k", "k", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many chunks.")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0), default=None,
              help="0 = BM25 only, 1 = vector only [default: the spec's].")
@click.option("--no-rerank", is_flag=True,
              help="The hybrid order alone, even when the index names a rerank server.")
@json_option
def index_query(name: str, text: str, k: int, alpha: float | None, no_rerank: bool,
                as_json: bool) -> None:
    """Hybrid search: the top chunks with their score, document and text; reordered by the
    index's rerank server when it names one (both scores shown)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "index", name, as_json)
        assert isinstance(spec, IndexSpec)
        if no_rerank:
            spec = spec.model_copy(update={"rerank_server": None})
        hits = engine.index_query(spec, text, k, alpha)
        if as_json:
            emit_json({"query": text, "alpha": spec.alpha if alpha is None else alpha,
                       "rerank": spec.rerank_server, "hits": hits})
            return
        reranked = spec.rerank_server is not None
        table = Table("#", "score", *(["rerank"] if reranked else []), "source", "chunk",
                      "text", title=(f"hybrid top {spec.rerank_depth}, reranked by "
                                     f"{spec.rerank_server}") if reranked else None)
        for rank, hit in enumerate(hits, 1):
            cells = [str(rank), score_text(hit.get("score"))]
            if reranked:
                cells.append(score_text(hit.get("rerank_score")))
            snippet = " ".join(str(hit["text"]).split())[:100]
            table.add_row(*cells, esc(hit["source"]), str(hit["chunk"]), esc(snippet))
        out.print(table)


def score_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@index_group.command("eval")
@click.argument("name", shell_complete=names_of("index"))
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False),
              help='A .jsonl file here: {"query": ..., "expected": ["doc.md", ...]} a line.')
@click.option("--k", "k", type=click.IntRange(1, 100), default=None,
              help="k of recall@k [default: the spec's eval_k].")
@json_option
def index_eval(name: str, queries: str, k: int | None, as_json: bool) -> None:
    """recall@k and MRR of the index's hybrid search, kept per lab commit: printed beside
    every earlier result (another chunking, embedding model or alpha)."""
    with open(queries, encoding="utf-8") as fh:
        text = fh.read()
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "index", name, as_json)
        assert isinstance(spec, IndexSpec)
        result = engine.index_eval(spec, text, k)
        if as_json:
            emit_json(result)
            return
        out.print(f"[bold]recall@{result['k']} {result['recall']:.3f}[/]  MRR "
                  f"{result['mrr']:.3f}  ({result['queries']} queries, alpha {result['alpha']},"
                  f" {result['seconds']}s)")
        if "rerank_recall" in result:
            out.print(f"[bold]reranked by {esc(result['rerank'])}: recall@{result['k']} "
                      f"{result['rerank_recall']:.3f}[/]  MRR {result['rerank_mrr']:.3f}  "
                      f"(its top {result['rerank_depth']} hybrid hits reordered)")
        reranked = any("rerank_recall" in row for row in result["history"])
        heads = (("commit", "chunks", "alpha", "k", "recall", "MRR", "rr recall", "rr MRR", "n")
                 if reranked else  # rr: after the rerank server; short, to fit 80 columns
                 ("commit", "chunking", "alpha", "k", "recall@k", "MRR", "queries"))
        table = Table(Column(heads[0], no_wrap=True), *heads[1:], box=box.SIMPLE_HEAD,
                      pad_edge=False, collapse_padding=True)
        for row in result["history"]:
            commit = str(row.get("commit") or "checklist")[:12]
            mark = " (now)" if row.get("commit") == result["commit"] else ""
            cells = [esc(commit + mark), esc(row.get("chunking")), str(row.get("alpha")),
                     str(row.get("k")), f"{row['recall']:.3f}", f"{row['mrr']:.3f}"]
            if reranked:  # recall@k and MRR after the rerank server reordered the hits
                cells += [score_text(row.get("rerank_recall")), score_text(row.get("rerank_mrr"))]
            table.add_row(*cells, str(row.get("queries")))
        out.print(table)


@index_group.command("list")
@json_option
def index_list(as_json: bool) -> None:
    """Indexes with their instance, collection, state, embedding source and last backup."""
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "index")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "collection", "state", "objects", "dims", "embed",
                      "chunking", "alpha", "last backup")
        for r in rows:
            cells = (r["name"], r.get("host"), r.get("collection"), r.get("state"),
                     "-" if r.get("count") is None else r["count"],
                     "-" if r.get("dims") is None else r["dims"], r.get("embed"),
                     r.get("chunking"), r.get("alpha"), r.get("last_backup") or "-")
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "indexes", "`llmops index create NAME --host H --collection C"
                   " --embed-server S --source DIR`")


@index_group.command("show")
@click.argument("name", shell_complete=names_of("index"))
@json_option
def index_show(name: str, as_json: bool) -> None:
    """An index's spec and its state now."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "index", name, as_json)
        assert isinstance(spec, IndexSpec)
        state = state_of(engine, spec)
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), "state": state})
            return
        for key, value in spec.model_dump(mode="json").items():
            out.print(Text(f"{key:>15}: {value}"))
        out.print(Text(f"{'state':>15}: {state}", style="bold"))


@index_group.command("remove")
@click.argument("name", shell_complete=names_of("index"))
@json_option
def index_remove(name: str, as_json: bool) -> None:
    """Back up and drop the collection and remove the index from the lab (its backups stay:
    roll back to bring it back)."""
    remove_resource("index remove", "index", name, f"index {name} removed", as_json)


index_group.add_command(logs_command(
    "index", "The last lines of the index's logs: the Weaviate llmops runs (procctl's log of "
    "the binary, docker logs of the container) and the ingest worker's."))
