"""The `smoke` step: one small request of the kind the server serves, timed, right after a
start (a completion; an embedding from a pooling server; a classification from a classifier)."""

from __future__ import annotations

import time
from typing import Any

from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.flags import serves_classification, serves_embeddings


def pooled(client: VllmClient, args: dict[str, Any]) -> tuple[str, str, dict[str, int]] | None:
    """(what, detail, facts) of a pooling server's probe; None for a generating server."""
    if serves_classification(args):
        label, probs = client.classify(["Hello"])[0]
        return "classification", f"{label} of {len(probs)} classes", {"classes": len(probs)}
    if serves_embeddings(args):
        vector = client.embeddings(["Hello"])[0]
        return "embedding", f"{len(vector)} dimensions", {"dimensions": len(vector)}
    return None


def smoke(client: VllmClient, args: dict[str, Any], progress: Progress) -> dict[str, Any]:
    began = time.monotonic()
    probe = pooled(client, args)
    if probe is not None:
        what, detail, facts = probe
        seconds = time.monotonic() - began
        progress(f"smoke {what} in {seconds * 1000:.0f} ms: {detail}")
        return {"smoke_seconds": round(seconds, 3), **facts}
    done = client.completion("Hello", max_tokens=4)
    progress(f"smoke completion in {done.seconds * 1000:.0f} ms: {done.text!r}")
    return {"smoke_seconds": round(done.seconds, 3)}
