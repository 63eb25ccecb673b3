"""Embeddings from an llmops server (vLLM's pooling runner, /v1/embeddings) through the SSH
tunnel to its port, in batches: the vectors an index's chunks and queries get."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.server.client import VllmClient, VllmError
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class EmbedError(TransportError):
    """The embedding server did not answer, or not with vectors."""


def embed_server(spec: IndexSpec, hosts: HostPool) -> ServerSpec | None:
    """The embedding server's desired spec (the lab's); None when the index has none."""
    found = hosts.desired("server", spec.embed_server) if spec.embed_server else None
    return found if isinstance(found, ServerSpec) else None


class Embedder:
    """Vectors for texts, `batch` at a time, through one tunnel held for a `with`."""

    def __init__(self, client: VllmClient, batch: int) -> None:
        self.client, self.batch = client, batch

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            try:
                vectors += self.client.embeddings(texts[start:start + self.batch])
            except (httpx.HTTPError, VllmError) as exc:
                raise EmbedError(f"embeddings from {self.client.base_url}: {exc}") from exc
        return vectors


@contextmanager
def embedder(spec: IndexSpec, hosts: HostPool, timeout: float = 120.0) -> Iterator[Embedder]:
    server = embed_server(spec, hosts)
    if server is None:
        raise SpecError("embed_server", f"there is no server named {spec.embed_server}",
                        "add it first: llmops server up NAME ... --arg runner=pooling")
    t = hosts.transport(server.host)
    with t.forward(server.port, reach_address(server)) as local, VllmClient(
        f"http://127.0.0.1:{local}", server.api_model(), timeout=timeout
    ) as client:
        yield Embedder(client, spec.batch_size)


def dimensions(spec: IndexSpec, hosts: HostPool) -> int:
    """The length of the server's vectors now (one short text); EmbedError when it fails."""
    with embedder(spec, hosts, timeout=30.0) as e:
        return len(e.embed(["dimension probe"])[0])
