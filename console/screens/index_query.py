"""An index's query box: text, alpha (0 = BM25 only, 1 = vector only; the spec's to start)
and k; Enter runs the hybrid search (`Engine.index_query`) in a thread worker and lists the
top chunks with their score, document, place and text. Nothing in the lab changes. A failure
is a notice and a line on the screen saying what the search needed (the index's embedding
server embeds the query first). Escape goes back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.ops.kinds.index.spec import IndexSpec

DEFAULT_K = 5
MAX_K = 100
SNIPPET = 160


@dataclass
class QueryAnswered(Message):
    """A search's outcome (worker -> screen): its hits, or why there are none."""

    text: str
    alpha: float
    hits: list[dict[str, Any]]
    error: str | None
    seconds: float


def query_inputs(alpha: str, k: str) -> tuple[float, int]:
    """Pure: the alpha and k typed; ValueError saying what is expected."""
    try:
        a = float(alpha)
    except ValueError:
        raise ValueError("alpha: give a number from 0 (BM25 only) to 1 (vector only)") from None
    if not 0.0 <= a <= 1.0:
        raise ValueError("alpha: give a number from 0 (BM25 only) to 1 (vector only)")
    try:
        n = int(k)
    except ValueError:
        raise ValueError(f"k: give a whole number from 1 to {MAX_K}") from None
    if not 1 <= n <= MAX_K:
        raise ValueError(f"k: give a whole number from 1 to {MAX_K}")
    return a, n


def hit_columns(spec: IndexSpec) -> tuple[str, ...]:
    """The hybrid score, and the reranker's beside it when the index names one."""
    return ("#", "score", *(("rerank",) if spec.rerank_server else ()), "source", "chunk",
            "text")


def hit_row(spec: IndexSpec, rank: int, hit: dict[str, Any]) -> list[str | Text]:
    """Pure: one hit's cells, in `hit_columns` order."""
    def score(value: Any) -> str:
        return "-" if value is None else f"{float(value):.3f}"

    snippet = " ".join(str(hit.get("text", "")).split())
    if len(snippet) > SNIPPET:
        snippet = snippet[:SNIPPET - 1] + "…"
    cells: list[str | Text] = [str(rank), score(hit.get("score"))]
    if spec.rerank_server:
        cells.append(score(hit.get("rerank_score")))
    return [*cells, Text(str(hit.get("source", ""))), str(hit.get("chunk", 0)), Text(snippet)]


def needs_text(spec: IndexSpec) -> str:
    """What a query of this index goes through, for a failure's notice."""
    via = (f"the query is embedded by server {spec.embed_server} first (it must be up: see "
           "Servers), then" if spec.embed_server else "the query is")
    return (f"{via} searched in {spec.collection} on Weaviate at {spec.host}:{spec.http_port} "
            f"(gRPC {spec.grpc_port})"
            + (f"; its top {spec.rerank_depth} reranked by server {spec.rerank_server}"
               if spec.rerank_server else ""))


class IndexQueryScreen(Screen[None]):
    """A hybrid search on one index, as often as the operator likes."""

    DEFAULT_CSS = """
    IndexQueryScreen #query-row { height: 3; }
    IndexQueryScreen #query-text { width: 1fr; }
    IndexQueryScreen #query-alpha { width: 14; }
    IndexQueryScreen #query-k { width: 10; }
    IndexQueryScreen #query-status { height: auto; padding: 0 1; }
    IndexQueryScreen #query-hits { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="query.close", tooltip="Back to the list"),
    ]

    def __init__(self, context: ViewContext, spec: IndexSpec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        self.searching = False
        self.answered: QueryAnswered | None = None

    def compose(self) -> ComposeResult:
        spec = self.spec
        yield Label(Text.assemble(("query index ", "bold"), (spec.name, "bold"),
                                  f" · {spec.collection} on {spec.host} · hybrid, alpha "
                                  f"{spec.alpha:g} in the spec (0 = BM25 only, 1 = vector only)"
                                  + (f" · reranked by {spec.rerank_server}"
                                     if spec.rerank_server else "")),
                    classes="screen-title")
        with Horizontal(id="query-row"):
            yield Input(placeholder="what to search for; Enter runs it", id="query-text")
            yield Input(f"{spec.alpha:g}", placeholder="alpha", id="query-alpha",
                        tooltip="0 = BM25 only, 1 = vector only")
            yield Input(str(DEFAULT_K), placeholder="k", id="query-k", tooltip="how many chunks")
        yield Static(Text("Type a query and press Enter.", style="grey50"), id="query-status")
        table: DataTable[str | Text] = DataTable(id="query-hits", cursor_type="row")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#query-hits", DataTable).add_columns(*hit_columns(self.spec))
        self.query_one("#query-text", Input).focus()

    @on(Input.Submitted)
    def submitted(self) -> None:
        text = self.query_one("#query-text", Input).value.strip()
        status = self.query_one("#query-status", Static)
        if not text:
            status.update(Text("Type something to search for.", style="yellow"))
            return
        try:
            alpha, k = query_inputs(self.query_one("#query-alpha", Input).value.strip(),
                                    self.query_one("#query-k", Input).value.strip())
        except ValueError as exc:
            status.update(Text(str(exc), style="bold red"))
            return
        self.searching = True
        status.update(Text(f"searching {self.spec.collection} for {text!r} (alpha {alpha:g}, "
                           f"k {k})…", style="cyan"))
        self.search(text, alpha, k)

    @work(thread=True, exclusive=True, exit_on_error=False, group="index-query",
          description="a hybrid search on an index")
    def search(self, text: str, alpha: float, k: int) -> None:
        started = time.monotonic()
        try:
            hits = self.context.engine.index_query(self.spec, text, k, alpha)
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(QueryAnswered(text, alpha, [], error_text(exc),
                                            time.monotonic() - started))
            return
        self.post_message(QueryAnswered(text, alpha, hits, None, time.monotonic() - started))

    def on_query_answered(self, message: QueryAnswered) -> None:
        self.searching, self.answered = False, message
        status = self.query_one("#query-status", Static)
        table = self.query_one("#query-hits", DataTable)
        table.clear()
        if message.error is not None:
            status.update(Text.assemble(("the search failed: ", "bold red"), message.error,
                                        "\n", (needs_text(self.spec), "grey50")))
            self.notify(f"{message.error}\n{needs_text(self.spec)}",
                        title=f"query of index {self.spec.name} failed", severity="error",
                        timeout=12)
            return
        found = len(message.hits)
        status.update(Text(f"{found} chunk{'' if found == 1 else 's'} for {message.text!r} "
                           f"(alpha {message.alpha:g}) in {message.seconds:.2f}s"
                           + ("" if found else ": the collection holds nothing that matches"),
                           style="green" if found else "yellow"))
        for rank, hit in enumerate(message.hits, 1):
            table.add_row(*hit_row(self.spec, rank, hit), key=str(rank))

    def action_close(self) -> None:
        self.dismiss(None)
