"""What an operator asks of a Weaviate index: the instance (attached, or run by llmops), one
collection, its vector index, where its vectors come from, how documents are chunked, and the
backup the commit references. Validated before anything is written; the API key is never a
field, only where it lives: the NAME of an environment variable or of an OS keyring entry
(SERVICE/USER, read through ops/secretref right before use)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmops.ops.kinds.base import NAME_PATTERN, Spec
from llmops.ops.secretref import keyring_ref, one_place

COLLECTION_PATTERN = r"^[A-Z][_0-9A-Za-z]{0,230}$"
"""Weaviate's class-name rule (a collection is a class)."""
PROPERTY_PATTERN = r"^[_A-Za-z][_0-9A-Za-z]{0,230}$"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
"""An environment variable's name, upper case as they are written (a key rarely is)."""
BACKUP_ID_PATTERN = r"^[a-z0-9_-]{1,128}$"
"""Weaviate's rule for backup ids: lowercase letters, digits, '-' and '_'."""
VECTORIZER_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
VECTORIZERS = ("text2vec-openai",)
"""Weaviate modules llmops configures: OpenAI-compatible /v1/embeddings, which vLLM serves."""
IMAGE_RE = re.compile(
    r"^[a-z0-9][a-z0-9./_-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
BUILTIN_PROPERTIES = ("text", "source", "chunk", "doc_sha")
"""What llmops writes into every chunk object: the chunk's text, its document (path relative
to `source`), its position in the document, and the document's sha256."""
RESERVED = {*BUILTIN_PROPERTIES, "id", "_id", "vector", "_additional", "_vector"}

PropertyType = Literal["text", "int", "number", "boolean", "date"]
Distance = Literal["cosine", "dot", "l2-squared"]
Launch = Literal["attach", "binary", "docker"]



def looks_like_a_key(v: str) -> bool:
    """A value where a NAME belongs: not an upper-case name, or one that is mostly digits."""
    if not re.match(ENV_NAME_PATTERN, v):
        return True
    digits = sum(c.isdigit() for c in v)
    return len(v) >= 20 and digits * 3 >= len(v)


def _abs_path(v: str | None, what: str) -> str | None:
    if v is None:
        return v
    if not (v.startswith("/") or v.startswith("~/")):
        raise ValueError(f"{what} must be an absolute path on the host (or start with ~/)")
    if "\x00" in v or ".." in v.split("/") or "//" in v:
        raise ValueError(f"{what} must be a plain path (no '..', no '//')")
    return v.rstrip("/") or v


DOCKER_MOUNTS = ("data_dir", "backup_dir")
"""Folders docker mounts with `-v SRC:DST`: its source must be a plain absolute path."""


def _docker_mount(v: str) -> None:
    """`-v SRC:DST` splits at ':' and docker never expands '~': either would mount something
    else than the folder asked for (or fail at start, after the commit)."""
    if ":" in v:
        raise ValueError(
            f"{v!r} has a ':', which docker's -v SRC:DST reads as a separator; pick a folder "
            "without ':' (or a symlink to it)")
    if v.startswith("~"):
        raise ValueError(
            f"{v!r}: docker does not expand '~' in -v; give the absolute path (e.g. "
            f"/home/USER{v[1:]})")


class IndexProperty(BaseModel):
    """One extra property of every chunk object, filled from a .jsonl record's field of the
    same name (the built-in ones, text, source, chunk and doc_sha, are always there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROPERTY_PATTERN)
    type: PropertyType = "text"

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED:
            raise ValueError(f"{v!r} is a property llmops writes itself; pick another name")
        return v


class IndexSpec(Spec):
    """One Weaviate collection kept by llmops, on an instance it attaches to or runs."""

    host: str = Field(
        pattern=NAME_PATTERN, description="Host where Weaviate runs (or is reached)."
    )
    http_port: int = Field(default=8080, ge=1, le=65535, description="Weaviate's REST port.")
    grpc_port: int = Field(default=50051, ge=1, le=65535, description="Weaviate's gRPC port.")
    launch: Launch = Field(
        default="attach", description="attach to a running Weaviate, or run it (binary, docker)."
    )
    binary: str | None = Field(
        default=None, description="launch = binary: the weaviate binary's path on the host."
    )
    image: str | None = Field(
        default=None, description="launch = docker: a pinned image, e.g. weaviate:1.32.4."
    )
    data_dir: str | None = Field(
        default=None, description="binary/docker: Weaviate's data folder on the host."
    )
    backup_dir: str | None = Field(
        default=None, description="binary/docker: the backup-filesystem module's folder."
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_NAME_PATTERN,
        description="NAME of the environment variable holding the API key (never the key).",
    )
    api_key_keyring: str | None = Field(
        default=None,
        description="SERVICE/USER of the OS keyring entry holding the API key (never the key).",
    )
    collection: str = Field(
        pattern=COLLECTION_PATTERN, description="Collection (class) name, e.g. Docs."
    )
    properties: list[IndexProperty] = Field(
        default_factory=list, description="Extra properties (name=type) from .jsonl records."
    )
    distance: Distance = Field(default="cosine", description="Vector distance.")
    ef: int | None = Field(default=None, ge=1, le=100_000, description="HNSW ef (search).")
    max_connections: int | None = Field(
        default=None, ge=4, le=2048, description="HNSW maxConnections."
    )
    embed_server: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="llmops server serving /v1/embeddings (vLLM pooling runner).",
    )
    vectorizer: str | None = Field(
        default=None, pattern=VECTORIZER_PATTERN,
        description="text2vec-openai: Weaviate embeds by calling embed_server itself.",
    )
    rerank_server: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="llmops server answering /v1/rerank (a cross-encoder, or an embedding "
        "model: cosine) that reorders the hybrid hits.",
    )
    rerank_depth: int = Field(
        default=20, ge=2, le=100,
        description="rerank_server: how many hybrid hits it reorders (the top k are shown).",
    )
    chunk_size: int = Field(default=800, ge=50, le=20_000, description="Characters per chunk.")
    chunk_overlap: int = Field(
        default=100, ge=0, le=10_000, description="Characters shared by neighbouring chunks."
    )
    batch_size: int = Field(default=32, ge=1, le=1024, description="Chunks per embedding batch.")
    alpha: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Hybrid search: 0 = BM25 only, 1 = vector only."
    )
    source: str | None = Field(
        default=None, description="Folder of .txt/.md/.jsonl on the host to ingest."
    )
    eval_set: str | None = Field(
        default=None,
        description="Queries with expected documents (.jsonl on the host): recall checked.",
    )
    eval_k: int = Field(default=5, ge=1, le=100, description="k of recall@k.")
    backup_id: str | None = Field(
        default=None,
        pattern=BACKUP_ID_PATTERN,
        description="The backup taken before this change (set by llmops).",
    )

    @field_validator("binary", "data_dir", "backup_dir", "source", "eval_set")
    @classmethod
    def _paths(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = _abs_path(v, info.field_name or "path")
        if v is not None and info.field_name in DOCKER_MOUNTS and \
                info.data.get("launch") == "docker":
            _docker_mount(v)
        if v is not None and info.field_name in DOCKER_MOUNTS and v.startswith("~") and \
                info.data.get("launch") == "binary":
            raise ValueError(
                f"{v!r}: Weaviate reads its folders from the environment as given and does not "
                f"expand '~'; give the absolute path (e.g. /home/USER{v[1:]})")
        return v

    @field_validator("vectorizer")
    @classmethod
    def _module(cls, v: str | None) -> str | None:
        if v is not None and v not in VECTORIZERS:
            raise ValueError(
                f"{v!r} is not a module llmops configures; use {', '.join(VECTORIZERS)} (Weaviate "
                "calls embed_server's OpenAI-compatible /v1/embeddings), or leave vectorizer out")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not IMAGE_RE.match(v):
            raise ValueError(
                "give a pinned image: repository:tag or repository@sha256:<digest>"
            )
        if v.endswith(":latest"):
            raise ValueError("':latest' moves; pin a version, e.g. :1.32.4")
        return v

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _key_name(cls, v: object) -> object:
        if isinstance(v, str) and looks_like_a_key(v):
            raise ValueError(
                "give the NAME of an environment variable that holds the key (e.g. "
                "WEAVIATE_API_KEY), never the key itself"
            )
        return v

    @field_validator("api_key_keyring")
    @classmethod
    def _key_entry(cls, v: str | None) -> str | None:
        """Refused without repeating what was given: a key pasted here must not be echoed."""
        try:
            return None if v is None else keyring_ref(v)
        except ValueError:
            raise ValueError(
                "give SERVICE/USER of the OS keyring entry that holds the key (letters, digits "
                "and . _ : @ -, e.g. llmops/weaviate-prod), never the key itself") from None

    @field_validator("properties")
    @classmethod
    def _distinct(cls, v: list[IndexProperty]) -> list[IndexProperty]:
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError("property names must be distinct")
        return v

    @model_validator(mode="after")
    def _shape(self) -> IndexSpec:
        if self.embed_server is None:
            raise ValueError(
                "give embed_server: the llmops server serving /v1/embeddings (with vectorizer "
                "= text2vec-openai, Weaviate calls it itself)"
            )
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap {self.chunk_overlap} must be below chunk_size {self.chunk_size}"
            )
        one_place(self.api_key_env, self.api_key_keyring, "api_key_env", "api_key_keyring")
        if self.http_port == self.grpc_port:
            raise ValueError("http_port and grpc_port must differ")
        if self.launch == "binary" and not self.binary:
            raise ValueError("launch = binary needs binary (the weaviate binary on the host)")
        if self.launch == "docker" and not self.image:
            raise ValueError("launch = docker needs image (a pinned tag)")
        if self.launch != "attach" and not (self.data_dir and self.backup_dir):
            raise ValueError(f"launch = {self.launch} needs data_dir and backup_dir")
        if self.launch == "attach" and (self.binary or self.image):
            raise ValueError("binary and image go with launch = binary / docker")
        return self

    def key_named(self) -> bool:
        """An API key is asked for (from the environment or the keyring)."""
        return bool(self.api_key_env or self.api_key_keyring)

    def key_place(self) -> str:
        """Where the key lives, for messages: never its value."""
        if self.api_key_env:
            return f"${self.api_key_env}"
        if self.api_key_keyring:
            return f"keyring {self.api_key_keyring}"
        return "(no key named)"

    def embeds_here(self) -> bool:
        """llmops embeds chunks and queries itself (through embed_server); a vectorizer
        module has Weaviate do it."""
        return self.embed_server is not None and self.vectorizer is None

    # -- what the data in the collection depends on ---------------------------------------
    def data_key(self, embed_model: str | None) -> str:
        """What the objects in the collection are a function of (besides the documents):
        a change of any of these makes the old objects wrong, so it is destructive (a backup
        first). `embed_model` is the embedding server's model as the lab knows it."""
        parts = {
            "collection": self.collection,
            "properties": [p.model_dump() for p in self.properties],
            "distance": self.distance,
            "max_connections": self.max_connections,
            "embed": f"module:{self.vectorizer}:{embed_model}" if self.vectorizer
            else embed_model,
            "chunk": [self.chunk_size, self.chunk_overlap],
            "source": self.source,
        }
        blob = json.dumps(parts, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def retrieval_key(self, embed_model: str | None) -> str:
        """What a query's results depend on: the objects (data key), alpha and k; an eval's
        recall is comparable only between equal keys."""
        blob = json.dumps([self.data_key(embed_model), self.alpha, self.eval_k])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def proc_name(self) -> str:
        """The detached process llmops runs for launch = binary / docker."""
        return f"index.{self.name}"
