"""The one place that knows how a Weaviate instance is started: argv and environment for the
binary or a `docker run` of a pinned image, configured as Weaviate documents it (flags for
host/port/scheme, the rest from environment variables), and the launch hash observe compares.

The API key never appears here: the spec names its place (a variable or a keyring entry), and
apply reads its value on this machine right before the start, so no plan, journal row or
commit can hold it."""

from __future__ import annotations

import hashlib
import json

from llmops.ops.kinds.index.spec import IndexSpec

KEY_VARIABLE = "AUTHENTICATION_APIKEY_ALLOWED_KEYS"
"""Weaviate's variable for the allowed API keys; apply fills it from where the spec names."""


def weaviate_env(spec: IndexSpec) -> dict[str, str]:
    """Weaviate's configuration (without the key's value): data and backup folders, the
    backup-filesystem module, the gRPC port, API-key auth when a key is named, and no
    auto-schema (llmops declares every property: an object with another is refused, not
    silently given a new property)."""
    binary = spec.launch == "binary"
    modules = ["backup-filesystem"] + ([spec.vectorizer] if spec.vectorizer else [])
    env = {
        "PERSISTENCE_DATA_PATH": str(spec.data_dir) if binary else "/var/lib/weaviate",
        "BACKUP_FILESYSTEM_PATH": str(spec.backup_dir) if binary else "/backups",
        "ENABLE_MODULES": ",".join(modules),
        "DEFAULT_VECTORIZER_MODULE": spec.vectorizer or "none",
        "GRPC_PORT": str(spec.grpc_port),
        "CLUSTER_HOSTNAME": "node1",
        "QUERY_DEFAULTS_LIMIT": "25",
        "AUTOSCHEMA_ENABLED": "false",
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false" if spec.key_named() else "true",
    }
    if spec.key_named():
        env |= {"AUTHENTICATION_APIKEY_ENABLED": "true", "AUTHENTICATION_APIKEY_USERS": "llmops"}
    return env


def weaviate_argv(spec: IndexSpec) -> list[str]:
    """The command: the binary on loopback (reached through the SSH tunnel), or docker run
    publishing both ports on the host's loopback with the data and backup folders mounted."""
    if spec.launch == "binary":
        assert spec.binary
        return [spec.binary, "--host", "127.0.0.1", "--port", str(spec.http_port),
                "--scheme", "http"]
    assert spec.image and spec.data_dir and spec.backup_dir
    env = weaviate_env(spec)
    argv = ["docker", "run", "--rm", "--name", f"llmops-{spec.name}",
            "-p", f"127.0.0.1:{spec.http_port}:8080",
            "-p", f"127.0.0.1:{spec.grpc_port}:{spec.grpc_port}",
            "-v", f"{spec.data_dir}:/var/lib/weaviate", "-v", f"{spec.backup_dir}:/backups"]
    if spec.vectorizer:  # the module calls embed_server on the host (vectorizer.base_url)
        argv += ["--add-host", "host.docker.internal:host-gateway"]
    for key in sorted(env):
        argv += ["-e", key]
    if spec.key_named():  # its value is filled in from where the spec names at start (apply)
        argv += ["-e", KEY_VARIABLE]
    return [*argv, spec.image, "--host", "0.0.0.0", "--port", "8080", "--scheme", "http"]


def launch_hash(spec: IndexSpec) -> str:
    """argv + environment (names and values, never the key's value): a change restarts it."""
    asked: dict[str, object] = {"argv": weaviate_argv(spec), "env": weaviate_env(spec),
                                "key": spec.api_key_env}
    if spec.api_key_keyring:  # only when named: the hashes of earlier specs stay as they were
        asked["ring"] = spec.api_key_keyring
    blob = json.dumps(asked, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
