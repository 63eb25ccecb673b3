"""Weaviate indexes: the instance (host, how it runs), the collection, its state, how many
objects it holds and their vector length, the newest backup llmops took (short) and the
hybrid search's alpha. The detail pane has the spec's facts and what the last observation
said, the ingest's progress bar (documents and chunks per second, from the ingest worker's
file) and the recall history as a chart (every eval kept for the index); `f` opens the query
box (a hybrid search through `Engine.index_query`; it changes nothing, so a read-only console
keeps it), `i` the ingest screen (`Engine.index_ingest`, a journalled action: not read-only).

Editing an index may lose the collection's objects (another chunking, distance, source or
embedding model): then, as `llmops index create` does, a backup of what it holds is taken
first (`Engine.index_backup_for`) and the operator confirms the change with its id in sight."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Confirm, Key, Opens, Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets.recall_chart import RECALL_CHART, ingest_bar
from llmops.console.widgets.render import num
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.index.spec import IndexSpec

if TYPE_CHECKING:
    from textual.screen import Screen

    from llmops.console.screens.base import ViewContext

INDEX_STATES = {"ready": ("●", "green"), "stale": ("◐", "bold yellow"),
                "stale (documents changed)": ("◐", "bold yellow"), "absent": ("○", "grey50"),
                "stopped": ("○", "grey50")}
"""How an index's state reads in its row (mark, style); others as any resource's."""
BACKUP_SHORT = 20


def index_spec(spec: Spec) -> IndexSpec:
    assert isinstance(spec, IndexSpec)
    return spec


def short_backup(backup_id: str | None, width: int = BACKUP_SHORT) -> str:
    """A backup id as the row shows it: its tail (the time it was taken) where it is long."""
    if not backup_id:
        return "-"
    return backup_id if len(backup_id) <= width else "…" + backup_id[-(width - 1):]


def instance_text(spec: IndexSpec) -> str:
    """Where Weaviate is and how llmops reaches it: `attach :8080/50051`."""
    how = {"attach": "attached", "binary": "run (binary)", "docker": "run (docker)"}[spec.launch]
    key = f" · key {spec.key_place()}" if spec.key_named() else ""
    return f"{how} on {spec.host} :{spec.http_port} grpc :{spec.grpc_port}{key}"


def facts_text(spec: IndexSpec, summary: dict[str, Any] | None) -> Text:
    """The spec's facts and the last observation, for the detail pane."""
    seen = summary or {}
    text = Text()
    text.append("instance   ", style="grey50")
    text.append(instance_text(spec))
    if seen.get("version"):
        text.append(f" · Weaviate {seen['version']}", style="grey50")
    text.append("\ncollection ", style="grey50")
    text.append(spec.collection, style="bold")
    props = ", ".join(f"{p.name}:{p.type}" for p in spec.properties)
    hnsw = "".join(f" {k} {v}" for k, v in (("ef", spec.ef), ("maxConn", spec.max_connections))
                   if v is not None)
    text.append(f" · {spec.distance}{hnsw}{' · ' + props if props else ''}")
    text.append("\nembedding  ", style="grey50")
    text.append(f"server {spec.embed_server}" + (f", called by Weaviate's {spec.vectorizer}"
                                                 if spec.vectorizer else ""))
    text.append(f" · batch {spec.batch_size} · alpha {spec.alpha:g}")
    if spec.rerank_server:
        text.append(f" · reranked by server {spec.rerank_server} (top {spec.rerank_depth})")
    text.append("\ningest     ", style="grey50")
    text.append(f"{spec.source or 'no source'} · chunks {spec.chunk_size}/{spec.chunk_overlap}")
    if spec.eval_set:
        text.append(f" · eval {spec.eval_set} @{spec.eval_k}")
    text.append("\nobjects    ", style="grey50")
    count, dims = seen.get("count"), seen.get("dims")
    text.append("not counted yet" if count is None else f"{count}", style="bold")
    text.append(f" · dims {'-' if dims is None else dims}")
    text.append("\nbackups    ", style="grey50")
    text.append(f"{seen.get('backups', 0)} taken · newest {seen.get('last_backup') or '-'}")
    if spec.backup_id:
        text.append(f" · this commit's {spec.backup_id}", style="grey50")
    return text


class IndexPresenter(Presenter):
    kind = "index"
    view_id = "indexes"
    title = "Indexes"
    columns = ("name", "host", "collection", "state", "objects", "dims", "last backup", "alpha")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "New", "Create a Weaviate index: a collection on an instance llmops "
                   "attaches to or runs, ingested with an embedding server (a form)"),
        "edit": Key("e", "Edit", "Change the selected index; a change that loses its objects "
                    "is backed up first (an action; ctrl+z restores the backup)"),
        "remove": Key("x", "Remove", "Back up and drop the collection and remove the index "
                      "from the lab (an action; ctrl+z restores it)"),
    }
    opens = (Opens("query", Key("f", "Find", "A hybrid search on the selected index: the "
                                "top chunks with their score and document (changes nothing)")),
             Opens("ingest", Key("i", "Ingest", "Read the selected index's source folder again "
                                 "and ingest what changed, with a progress bar (a journalled "
                                 "action; the worker goes on if the console closes)")))
    chart = RECALL_CHART
    """The recall history (every eval kept for the index) beside its ingest's progress bar."""
    form = FormLayout(
        fields=("name", "host", "launch", "http_port", "grpc_port", "api_key_env",
                "api_key_keyring", "binary", "image", "data_dir", "backup_dir", "collection",
                "distance", "ef",
                "max_connections", "embed_server", "vectorizer", "alpha", "batch_size",
                "rerank_server", "rerank_depth", "source", "chunk_size", "chunk_overlap",
                "eval_set", "eval_k"),
        labels={"http_port": "HTTP port", "grpc_port": "gRPC port", "api_key_env": "API key env",
                "api_key_keyring": "API key keyring",
                "data_dir": "Data dir", "backup_dir": "Backup dir", "ef": "HNSW ef",
                "max_connections": "Max conns", "embed_server": "Embed server",
                "batch_size": "Batch size", "vectorizer": "Vectorizer",
                "rerank_server": "Rerank server", "rerank_depth": "Rerank depth",
                "chunk_size": "Chunk size",
                "chunk_overlap": "Overlap", "eval_set": "Eval set", "eval_k": "Eval k"},
        help={"name": "e.g. docs (lowercase letters, digits, '-')",
              "host": "a host of the lab (see Hosts)",
              "collection": "e.g. Docs (a Weaviate class name: starts upper case)",
              "embed_server": "a server of the lab with args runner = pooling (see Servers)",
              "rerank_server": "optional: a pooling server answering /v1/rerank",
              "vectorizer": "optional: text2vec-openai (Weaviate calls the embed server)",
              "api_key_env": "NAME of the variable holding the key, never the key",
              "api_key_keyring": "or SERVICE/USER of an OS keyring entry (keyring set S U)",
              "source": "e.g. ~/llmops-data/docs (.txt, .md, .jsonl on the host)"},
        refs={"host": "host", "embed_server": "server"},  # not rerank_server: a new form
        # starts a ref on the lab's only server, and reranking is optional
        sections={"name": "Instance", "collection": "Collection", "embed_server": "Embedding",
                  "source": "Ingest"},
        advanced=("api_key_env", "api_key_keyring", "binary", "image", "data_dir",
                  "backup_dir", "ef",
                  "max_connections", "vectorizer", "batch_size", "rerank_server",
                  "rerank_depth", "eval_set", "eval_k"),
        title="New Weaviate index", submit="Create", edit_focus="alpha")
    what = ("Weaviate collections appear here: their state, object count and vector "
            "dimensions, and the backup each destructive change can be rolled back to; f runs "
            "a hybrid search on the selected one, i ingests its documents again.")
    cli = "llmops index create NAME --host H --collection C --embed-server S"
    created = "created"
    leaves = ("is backed up, its collection dropped, and it leaves the lab's desired state "
              "(its backups stay on the host)")
    serving = ("ready", "stale", "stale (documents changed)")
    """States with nothing to explain (absent, stopped and unreachable say why)."""
    observe_interval = 15.0
    pane = True

    # -- rows -------------------------------------------------------------------------
    def state_cell(self, row: RowState) -> Text:
        look = INDEX_STATES.get(row.state)
        if row.busy or look is None:
            return super().state_cell(row)
        mark, style = look
        return Text(f"{mark} {row.state}", style=style)

    def cells(self, row: RowState) -> list[str | Text]:
        spec, seen = index_spec(row.spec), row.summary or {}
        count, dims = seen.get("count"), seen.get("dims")
        return [spec.name, spec.host, spec.collection, self.state_cell(row),
                "-" if count is None else str(count), "-" if dims is None else str(dims),
                short_backup(seen.get("last_backup")), num(spec.alpha, "{:g}")]

    def detail_title(self, row: RowState) -> Text:
        spec = index_spec(row.spec)
        title = Text.assemble((spec.name, "bold"), f" · {spec.collection} on {spec.host} · ",
                              (row.busy or row.state, "bold"))
        title.append("  (f: find, a hybrid query)\n", style="grey50")
        title.append_text(facts_text(spec, row.summary))
        return title

    def progress_bar(self, row: RowState) -> tuple[float, float, Text] | None:
        return ingest_bar(row.points)

    def changing(self) -> set[str]:
        return {*super().changing(), "ingest"}  # an action: gone in read-only mode

    # -- the query and ingest screens --------------------------------------------------
    def open_screen(self, verb: str, context: ViewContext, row: RowState) -> Screen[None]:
        if verb == "ingest":
            from llmops.console.screens.index_ingest import IndexIngestScreen

            return IndexIngestScreen(context, index_spec(row.spec))
        from llmops.console.screens.index_query import IndexQueryScreen

        return IndexQueryScreen(context, index_spec(row.spec))

    # -- changes: a destructive edit is backed up first ---------------------------------
    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        return before is not None  # the host says whether the change loses objects

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        wanted = IndexSpec.model_validate({**spec.model_dump(), "backup_id": None})
        filled = context.engine.index_backup_for(wanted)
        if filled.backup_id:
            body = Text.assemble(
                "This change makes the collection's objects anew: what ", (wanted.collection,
                                                                          "bold"),
                " holds now is in backup\n\n", (f"  {filled.backup_id}\n\n", "bold cyan"),
                "which the commit names. ctrl+z restores it.")
        else:
            body = Text("This change keeps the collection's objects (no backup needed). "
                        "It is an action: ctrl+z undoes it.")
        return Confirm(f"Change index {wanted.name}?", body, "Change", spec=filled)
