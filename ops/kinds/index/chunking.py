"""Documents into chunks, and chunks into stable ids (pure).

A chunk's id is a uuid5 of the collection and the sha256 of its source and text, so the
same document chunked the same way always gives the same ids: a re-ingest finds them all
present and adds nothing; a changed document gives new ids, and its old chunks (ids no
longer produced for that source) are deleted."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = uuid.UUID("5b0c7c52-57a4-4f0e-9a51-3f1d1c6f5a10")
SUFFIXES = (".txt", ".md", ".jsonl", ".pdf")
TEXT_FIELDS = ("text", "content", "body")
"""Where a .jsonl record's text is looked for, in this order."""
BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")
"""Where a chunk prefers to end, best first: a paragraph, a line, a sentence, a word."""


@dataclass(frozen=True)
class Chunk:
    """One object to insert: its id, text, document and place, and the extra properties."""

    uuid: str
    text: str
    source: str
    chunk: int
    doc_sha: str
    extra: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "chunk": self.chunk,
                "doc_sha": self.doc_sha, **self.extra}


def chunk_id(collection: str, source: str, text: str) -> str:
    digest = hashlib.sha256(f"{source}\0{text}".encode()).hexdigest()
    return str(uuid.uuid5(NAMESPACE, f"{collection}:{digest}"))


def split_text(text: str, size: int, overlap: int) -> list[str]:
    """Pieces of at most `size` characters, each starting `overlap` characters before the
    previous one ended, cut at the best break in the last third of the window."""
    text = text.strip()
    if not text:
        return []
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            floor = start + (2 * size) // 3
            for mark in BREAKS:
                at = text.rfind(mark, floor, end)
                if at > start:
                    end = at + len(mark)
                    break
        piece = text[start:end].strip()
        if piece:
            pieces.append(piece)
        if end >= len(text):
            break
        following = max(end - overlap, start + 1)
        if overlap:  # begin on a word, not in the middle of one
            space = text.find(" ", following, end)
            following = space + 1 if space != -1 else following
        start = following
    return pieces


def pdf_text(data: bytes) -> str:
    """A PDF's text, page after page (pypdf: pure Python, no system library). A page
    without a text layer (a scan) gives nothing: OCR is not llmops's job."""
    from io import BytesIO

    from pypdf import PdfReader

    reader = PdfReader(BytesIO(data))
    return "\n\n".join(text for page in reader.pages if (text := page.extract_text().strip()))


def documents(rel: str, raw: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(source, text, record) per document in a file: one for .txt/.md/.pdf (its text), one
    per line of a .jsonl (its `id` if it has one names it `rel#id`, else `rel#line`)."""
    if not rel.endswith(".jsonl"):
        return [(rel, raw, {})]
    found = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        text = next((record[k] for k in TEXT_FIELDS if isinstance(record.get(k), str)), None)
        if text is None:
            continue
        name = record.get("id")
        found.append((f"{rel}#{name if name is not None else number}", text, record))
    return found


def chunk_document(
    collection: str, source: str, text: str, size: int, overlap: int,
    record: dict[str, Any] | None = None, extra_names: tuple[str, ...] = (),
) -> list[Chunk]:
    doc_sha = hashlib.sha256(text.encode()).hexdigest()
    extra = {k: (record or {})[k] for k in extra_names if k in (record or {})}
    return [
        Chunk(chunk_id(collection, source, piece), piece, source, i, doc_sha, extra)
        for i, piece in enumerate(split_text(text, size, overlap))
    ]
