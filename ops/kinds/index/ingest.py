"""Ingest a folder of documents into the collection: read them from the host, chunk (ids by
content), delete the chunks no document produces any more (a changed or removed document),
embed only the chunks the collection lacks, in batches, and insert them with the client's
batch API. A second ingest of the same folder embeds and inserts nothing."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.index import records
from llmops.ops.kinds.index.chunking import Chunk, chunk_document, documents, pdf_text
from llmops.ops.kinds.index.embed import embedder
from llmops.ops.kinds.index.schema import count_of, dims_of
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.weaviate_conn import connect
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

DELETE_GROUP = 500
PROGRESS_EVERY_S = 2.0
PROBE_WORDS = 12


def read_chunks(spec: IndexSpec, t: Transport) -> tuple[str, int, list[Chunk]]:
    """(the source's fingerprint, documents, their chunks in order, one per id)."""
    assert spec.source
    listed = records.list_source(t, spec.source)
    if not listed.get("ok"):
        raise TransportError(f"source {spec.source} on {spec.host}: {listed.get('error')}")
    extra = tuple(p.name for p in spec.properties)
    chunks: dict[str, Chunk] = {}
    docs = 0
    for rel, _size, _mtime in listed["files"]:
        raw = read_document(t, f"{spec.source}/{rel}")
        for source, text, record in documents(rel, raw):
            docs += 1
            for c in chunk_document(spec.collection, source, text, spec.chunk_size,
                                    spec.chunk_overlap, record, extra):
                chunks.setdefault(c.uuid, c)
    return str(listed["fingerprint"]), docs, list(chunks.values())


def read_document(t: Transport, path: str) -> str:
    """A document's text: a PDF is fetched as bytes and its text layer read here."""
    if not path.endswith(".pdf"):
        return t.read_text(path)
    with tempfile.TemporaryDirectory(prefix="llmops-pdf-") as folder:
        local = Path(folder) / "doc.pdf"
        t.get(path, local)
        try:
            return pdf_text(local.read_bytes())
        except Exception as exc:  # pypdf's errors have no common base worth naming
            raise TransportError(f"{path}: not a readable PDF ({exc})") from None


def probe_of(chunks: list[Chunk]) -> dict[str, str] | None:
    """A known query for the checklist: the opening words of the first document's first
    chunk, which must find that document again."""
    if not chunks:
        return None
    first = min(chunks, key=lambda c: (c.source, c.chunk))
    return {"query": " ".join(first.text.split()[:PROBE_WORDS]), "source": first.source}


Tick = Callable[[dict[str, Any]], None]


def counts(done: int, total: int, docs_done: int, docs: int, seconds: float,
           rate: tuple[int, int]) -> dict[str, Any]:
    """One progress entry: documents and chunks done of their totals (what was in before
    included), and the rates of this run's (chunks, documents)."""
    secs = max(seconds, 1e-6)
    return {"chunks_done": done, "chunks_total": total, "docs_done": docs_done,
            "docs_total": docs, "chunks_per_s": round(rate[0] / secs, 2),
            "docs_per_s": round(rate[1] / secs, 3), "seconds": round(seconds, 2)}


def ingest(spec: IndexSpec, hosts: HostPool, t: Transport, progress: Progress,
           tick: Tick | None = None) -> dict[str, Any]:
    """The whole ingest; `tick` gets a `counts` entry after every batch (the worker writes
    them to its progress file). Done counts include what was in before (a resumed ingest)."""
    from weaviate.classes.data import DataObject
    from weaviate.classes.query import Filter

    began = time.monotonic()
    fingerprint, docs, chunks = read_chunks(spec, t)
    progress(f"{docs} documents, {len(chunks)} chunks in {spec.source}")
    wanted = {c.uuid for c in chunks}
    with connect(spec, hosts, timeout=600.0) as client:
        coll = client.collections.get(spec.collection)
        existing = {str(o.uuid) for o in coll.iterator(return_properties=[])}
        stale = sorted(existing - wanted)
        for start in range(0, len(stale), DELETE_GROUP):
            group = stale[start:start + DELETE_GROUP]
            coll.data.delete_many(where=Filter.by_id().contains_any(group))
        if stale:
            progress(f"deleted {len(stale)} chunks no document produces any more")
        new = [c for c in chunks if c.uuid not in existing]
        left = Counter(c.source for c in new)
        held = len(chunks) - len(new)
        if held and new:
            progress(f"resuming: {held} of {len(chunks)} chunks are in already")
        started = time.monotonic()
        docs_in = docs - sum(1 for n in left.values() if n)

        def report(added: int) -> None:
            if tick is not None:
                docs_done = docs - sum(1 for n in left.values() if n)
                tick(counts(held + added, len(chunks), docs_done, docs,
                            time.monotonic() - started, (added, docs_done - docs_in)))

        report(0)
        added, last = 0, time.monotonic()
        if new:
            with embedder(spec, hosts) if spec.embeds_here() else nullcontext() as e:
                for start in range(0, len(new), spec.batch_size):
                    batch = new[start:start + spec.batch_size]
                    # a vectorizer module: Weaviate embeds them, calling embed_server itself
                    vectors = e.embed([c.text for c in batch]) if e else [None] * len(batch)
                    result = coll.data.insert_many([
                        DataObject(properties=c.properties(), uuid=c.uuid, vector=v)
                        for c, v in zip(batch, vectors, strict=True)
                    ])
                    if result.errors:
                        first = next(iter(result.errors.values()))
                        raise TransportError(
                            f"{len(result.errors)} of {len(batch)} chunks were refused: "
                            f"{getattr(first, 'message', first)}")
                    added += len(batch)
                    left.subtract(c.source for c in batch)
                    report(added)
                    if tick is None and (time.monotonic() - last >= PROGRESS_EVERY_S
                                         or added == len(new)):
                        last = time.monotonic()
                        secs = max(last - began, 1e-6)
                        progress(f"{added}/{len(new)} chunks embedded and inserted "
                                 f"({added / secs:.1f} chunks/s, {docs / secs:.1f} docs/s)")
        count, dims = count_of(client, spec.collection), dims_of(client, spec.collection)
    seconds = round(time.monotonic() - began, 3)
    progress(f"ingest done: {added} added, {len(stale)} deleted, {count} objects, "
             f"{dims} dims in {seconds}s")
    return {"source_fp": fingerprint, "docs": docs, "chunks": len(chunks), "added": added,
            "deleted": len(stale), "count": count, "dims": dims, "probe": probe_of(chunks),
            "ingest_seconds": seconds,
            "chunks_per_s": round(added / seconds, 2) if seconds and added else None}
