"""A Weaviate 1.32 stand-in for tests: no Weaviate server can be installed here, so this speaks
the protocol weaviate-client v4 uses — REST plus gRPC on the client's own generated stubs —
closely enough that llmops's production code cannot tell it from Weaviate.

    python -m weaviate_standin --http-port P --grpc-port G --backup-dir D \\
        [--data-dir D] [--api-key-env NAME] [--host 127.0.0.1]      (cwd tests/, or
    python -m tests.weaviate_standin ... from the repo root)

prints "ready http=P grpc=G" and runs until SIGTERM. It also runs the way the real binary does
(`--host H --port P --scheme http` plus Weaviate's environment variables: GRPC_PORT,
PERSISTENCE_DATA_PATH, ENABLE_MODULES=backup-filesystem[,text2vec-openai],
BACKUP_FILESYSTEM_PATH, OPENAI_APIKEY, AUTHENTICATION_APIKEY_ENABLED/_ALLOWED_KEYS,
AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED, AUTOSCHEMA_ENABLED, QUERY_DEFAULTS_LIMIT,
QUERY_MAXIMUM_RESULTS, CLUSTER_HOSTNAME; other modules are refused): ``write_binary(path)``
writes an executable to use as llmops's `binary`. In-process:
``start_standin(http_port, grpc_port, backup_dir, api_key=None) -> handle`` (port 0 = free port,
``handle.http_port`` / ``handle.grpc_port``; ``handle.stop()``).

The real thing it stands in for (the version /v1/meta reports; weaviate-client 4.24 supports
Weaviate >= 1.27, and 1.32 keeps batches on BatchObjects rather than 1.36's BatchStream):

    docker run -d --name weaviate -p 8080:8080 -p 50051:50051 \\
      -e PERSISTENCE_DATA_PATH=/var/lib/weaviate -e ENABLE_MODULES=backup-filesystem \\
      -e BACKUP_FILESYSTEM_PATH=/var/lib/weaviate-backups -e DEFAULT_VECTORIZER_MODULE=none \\
      -e AUTHENTICATION_APIKEY_ENABLED=true -e AUTHENTICATION_APIKEY_ALLOWED_KEYS=$KEY \\
      -e AUTHENTICATION_APIKEY_USERS=llmops -e AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=false \\
      -v weaviate-data:/var/lib/weaviate -v weaviate-backups:/var/lib/weaviate-backups \\
      cr.weaviate.io/semitechnologies/weaviate:1.32.27

Implemented (Weaviate 1.32.27 behaviour, read from its source and checked against
weaviate-python-client's own integration tests):
- REST: /v1, /v1/meta, /v1/.well-known/{live,ready,openid-configuration (404)}, /v1/nodes[/C]
  (minimal and verbose), /v1/cluster/statistics, /v1/schema (list, create with Weaviate's
  defaults, get, update of the mutable settings, add property or named vector, delete, shards),
  /v1/objects (create, list, get, head, replace, merge, delete, references add/replace/delete),
  /v1/batch/objects (create, delete by where filter), /v1/batch/references, /v1/backups/
  filesystem (create, list, status, restore, restore status; cancelling a finished one refused).
- gRPC weaviate.v1.Weaviate: Search (fetch with limit/offset/after/sort, filters, near_vector,
  near_object, bm25 with and/or/minimum-match operators and ^boosts, hybrid with alpha, both
  fusions and a vector-distance cut, autocut, multi-target joins, references; metadata uuid,
  times, distance, certainty, score, explain_score, vectors), BatchObjects, BatchReferences,
  BatchDelete (dry run, verbose), Aggregate (count; text/int/number/boolean/date metrics, also
  over hybrid/near_vector hits), TenantsGet (refused: no multi-tenancy); the health check.
- text2vec-openai (modules.py, when enabled): its config validated and defaulted as
  class_settings.go does; objects without a vector embedded per batch, hybrid queries without
  one and near_text per query, by POST <baseURL>/v1/embeddings from this process with the key
  from X-Openai-Api-Key or OPENAI_APIKEY (clients/openai.go), on the class name
  (vectorizeClassName) and the text properties in name order.
- Vectors: class-level and/or named (self-provided or text2vec-openai), hnsw or flat config,
  cosine / dot / l2-squared / manhattan / hamming by exhaustive search (numpy when installed),
  dimension checks.
- Text: word / lowercase / whitespace / field / trigram tokenization, stopwords, BM25F (k1, b
  from the collection), filters that tokenize like Weaviate's inverted index (so Equal on a
  word-tokenized "a.md" is Equal("md")), reference and reference-count filters.
- Auto-schema on by default, as in Weaviate; AUTOSCHEMA_ENABLED=false (environment, read by
  the process) or start_standin(autoschema=False) refuses unknown properties and collections.
- Auth: with --api-key-env, `Authorization: Bearer <key>` on REST and gRPC metadata; without
  it, anonymous access, and a bearer header is refused as Weaviate refuses it.
- Backups: folders <backup-dir>/<id>/ (backup_config.json, restore_config.json, node1/
  standin-data.json); asynchronous like Weaviate; a restore over an existing collection ends
  FAILED with "class name X already exists". --data-dir: loaded at start, written a few
  seconds after changes, after backups and on stop.

Not implemented (refused with a clear error, or absent): vectorizer modules other than
text2vec-openai (and DEFAULT_VECTORIZER_MODULE is checked, not applied), near_text's moveTo /
moveAwayFrom, generative and reranker modules, multi-tenancy, multi-vector
(ColBERT) indexes, group-by, BatchStream (1.36's server-side batching), GraphQL, RBAC / users /
aliases / replication endpoints, backup backends other than filesystem, filters inside nested
objects, phone-number parsing. Data written in the last seconds before a SIGKILL is lost.
"""

from __future__ import annotations

from typing import Any

VERSION = "1.32.27"
__all__ = ["VERSION", "StandinHandle", "start_standin", "write_binary"]


def __getattr__(name: str) -> Any:
    """Lazy, so that `python -m` can load the stubs its light way before anything else."""
    if name in ("StandinHandle", "start_standin"):
        from . import server

        return getattr(server, name)
    if name == "write_binary":
        from .binary import write_binary

        return write_binary
    raise AttributeError(name)
