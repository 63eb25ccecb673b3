"""Reaching a Weaviate instance: through SSH forwards of its HTTP and gRPC ports, with the
API key read from where the spec NAMES it (an environment variable or an OS keyring entry,
ops/secretref; the key never leaves this process's memory), readiness and the version the
installed weaviate-client supports.

`skip_init_checks=True` with our own readiness and version checks: the client's own init
check also asks PyPI for its latest version on every connect, which a console polling an
index every few seconds must not do; the gRPC port is exercised by the first query."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.vectorizer import module_headers
from llmops.ops.secretref import resolve
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from weaviate import WeaviateClient

    from llmops.ops.hostpool import HostPool

MIN_VERSION = (1, 27, 0)
"""The oldest Weaviate weaviate-client 4.x connects to (its connect refuses older ones)."""


class Unreachable(TransportError):
    """The instance did not answer (not running, wrong port, refused the key)."""


def api_key(spec: IndexSpec, environ: dict[str, str] | None = None) -> str | None:
    """The key's value from the one place the spec names (a variable or a keyring entry),
    read here and now; a named place that holds nothing is refused naming its field and the
    fix (SpecError: nothing is written)."""
    return resolve(env_field="api_key_env", env=spec.api_key_env,
                   keyring_field="api_key_keyring", ring=spec.api_key_keyring, environ=environ)


def headers(spec: IndexSpec) -> dict[str, str]:
    key = api_key(spec)
    return {"Authorization": f"Bearer {key}"} if key else {}


def parse_version(text: str) -> tuple[int, int, int] | None:
    found = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text or "")
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def supported(version: str) -> bool:
    parsed = parse_version(version)
    return parsed is not None and parsed >= MIN_VERSION


def where(spec: IndexSpec) -> str:
    return f"Weaviate on {spec.host} (ports {spec.http_port}/{spec.grpc_port})"


def meta(spec: IndexSpec, hosts: HostPool, timeout: float = 10.0) -> dict[str, Any]:
    """Readiness (/v1/.well-known/ready) and /v1/meta through the HTTP port's forward;
    Unreachable when it does not answer, says it is not ready, or refuses the key."""
    t = hosts.transport(spec.host)
    try:
        with t.forward(spec.http_port) as local, httpx.Client(
            base_url=f"http://127.0.0.1:{local}", timeout=timeout, headers=headers(spec)
        ) as http:
            ready = http.get("/v1/.well-known/ready")
            if ready.status_code != 200:
                raise Unreachable(f"{where(spec)} is not ready (HTTP {ready.status_code})")
            answer = http.get("/v1/meta")
    except httpx.HTTPError as exc:
        raise Unreachable(f"{where(spec)} did not answer: {exc or type(exc).__name__}") from exc
    if answer.status_code in (401, 403):
        raise Unreachable(
            f"{where(spec)} refused the key in {spec.key_place()} "
            f"(HTTP {answer.status_code})"
        )
    if answer.status_code != 200:
        raise Unreachable(f"{where(spec)}: /v1/meta answered HTTP {answer.status_code}")
    return dict(answer.json())


@contextmanager
def connect(spec: IndexSpec, hosts: HostPool, *, timeout: float = 60.0
            ) -> Iterator[WeaviateClient]:
    """A weaviate-client v4 client on the instance through forwards of both ports."""
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout
    from weaviate.exceptions import WeaviateBaseError

    key = api_key(spec)
    t = hosts.transport(spec.host)
    with t.forward(spec.http_port) as http_port, t.forward(spec.grpc_port) as grpc_port:
        try:
            client = weaviate.connect_to_custom(
                http_host="127.0.0.1", http_port=http_port, http_secure=False,
                grpc_host="127.0.0.1", grpc_port=grpc_port, grpc_secure=False,
                auth_credentials=Auth.api_key(key) if key else None,
                headers=module_headers(spec) or None,
                skip_init_checks=True,
                additional_config=AdditionalConfig(
                    timeout=Timeout(init=10, query=timeout, insert=max(timeout, 90))
                ),
            )
        except (WeaviateBaseError, httpx.HTTPError, OSError) as exc:
            raise Unreachable(f"{where(spec)} did not answer: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
