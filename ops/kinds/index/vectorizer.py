"""A Weaviate vectorizer module as an index's source of vectors: `text2vec-openai` pointed at
an llmops embedding server's OpenAI-compatible `/v1/embeddings`. Weaviate then embeds the
chunks it is given without vectors, and hybrid queries, by calling that server from its own
host — so the URL is the one the index's host (or its docker container) reaches the server
at, not the console's SSH tunnel. Pure: the URL and the module's settings from the specs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

NO_KEY = "llmops-no-key"
"""What the `X-OpenAI-Api-Key` header carries: text2vec-openai refuses to call without a key,
and an llmops server has none (its flags never carry --api-key). Not a secret."""
LOOPBACKS = ("127.0.0.1", "localhost", "::1")
DOCKER_HOST = "host.docker.internal"
"""The name a container reaches its host by (`--add-host host.docker.internal:host-gateway`)."""


def module_headers(spec: IndexSpec) -> dict[str, str]:
    """Headers every client request carries for the module (Weaviate reads the key there)."""
    return {"X-OpenAI-Api-Key": NO_KEY} if spec.vectorizer else {}


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def base_url(spec: IndexSpec, server: ServerSpec, server_address: str | None) -> str:
    """The embedding server's base URL as Weaviate on the index's host calls it;
    `server_address` is the server host's address (None for a local host). SpecError naming
    embed_server when Weaviate could not reach it there."""
    loopback_only = server.listen in LOOPBACKS
    if spec.launch == "docker" and server.host == spec.host:
        if loopback_only:
            raise SpecError(
                "embed_server", f"server {server.name} listens on {server.listen} only: "
                "Weaviate in a docker container cannot reach the host's loopback",
                f"give server {server.name} listen = 0.0.0.0 (the container calls it through "
                f"{DOCKER_HOST}), or launch Weaviate as a binary")
        return f"http://{DOCKER_HOST}:{server.port}"
    if server.host == spec.host:
        return f"http://{_url_host(reach_address(server))}:{server.port}"
    if loopback_only:
        raise SpecError(
            "embed_server", f"server {server.name} listens on {server.listen} of host "
            f"{server.host}: Weaviate on {spec.host} cannot call it",
            f"run the embedding server on {spec.host}, or give it listen = 0.0.0.0")
    address = server.listen if server.listen not in ("0.0.0.0", "::") else server_address
    if not address:
        raise SpecError(
            "embed_server", f"host {server.host} has no address Weaviate on {spec.host} could "
            "call", f"run the embedding server on {spec.host}")
    return f"http://{_url_host(address)}:{server.port}"


def module_settings(spec: IndexSpec, server: ServerSpec, url: str) -> dict[str, Any]:
    """Configure.Vectors.text2vec_openai's arguments: the server's URL and model; only the
    chunk's text is embedded (not the collection's name), as llmops embeds it itself."""
    return {"base_url": url, "model": server.api_model(), "source_properties": ["text"],
            "vectorize_collection_name": False}


def module_for(spec: IndexSpec, hosts: HostPool) -> dict[str, Any] | None:
    """The module's settings for this index from the lab's specs (None: llmops embeds)."""
    if not spec.vectorizer:
        return None
    server = hosts.desired("server", spec.embed_server) if spec.embed_server else None
    if not isinstance(server, ServerSpec):
        raise SpecError("embed_server", f"there is no server named {spec.embed_server}",
                        "add it first: llmops server up NAME ... --arg runner=pooling")
    where = hosts.desired("host", server.host)
    return module_settings(spec, server, base_url(spec, server, getattr(where, "address", None)))
