"""A small httpx client for a gateway (through a local port forward), and the master key read
by name from this machine's environment.

The answer keeps what LiteLLM says in its headers: which backend answered, the cost, the
cache key, fallbacks tried and its own overhead: what `llmops gateway try` and the checklist
show."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.secretref import from_keyring

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def reach(spec: GatewaySpec) -> str:
    """The address on the host that reaches the gateway's port: loopback for a wildcard."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(spec.listen,
                                                                          spec.listen)


def key_source(spec: GatewaySpec) -> str:
    """Where the key comes from, in words (for a printed command: never the key)."""
    if spec.master_key_keyring is not None:
        return f"<from the keyring entry {spec.master_key_keyring}>"
    return f"<from ${spec.master_key_env}>"


def master_key(spec: GatewaySpec) -> str:
    """The key's value, read right before use: from the OS keyring entry the spec names, else
    from this machine's variable `master_key_env`; SpecError naming the field when it is not
    there."""
    if spec.master_key_keyring is not None:
        return from_keyring(spec.master_key_keyring, "master_key_keyring")
    value = os.environ.get(spec.master_key_env, "")
    if not value:
        raise SpecError(
            "master_key_env", f"{spec.master_key_env} is not set in this environment",
            f"export {spec.master_key_env}=<the gateway's master key> before running llmops",
        )
    return value


@dataclass
class Answer:
    """One request through the gateway: status, text, tokens, and LiteLLM's headers."""

    status: int
    seconds: float
    text: str = ""
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def api_base(self) -> str:
        return self.headers.get("x-litellm-model-api-base", "")

    def header_float(self, name: str) -> float | None:
        try:
            return float(self.headers[name])
        except (KeyError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        h = self.headers
        return {"ok": self.ok, "status": self.status, "seconds": round(self.seconds, 4),
                "text": self.text, "error": self.error, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "api_base": self.api_base,
                "deployment": h.get("x-litellm-model-id"),
                "cost": self.header_float("x-litellm-response-cost"),
                "cache_hit": "x-litellm-cache-key" in h,
                "fallbacks": int(self.header_float("x-litellm-attempted-fallbacks") or 0),
                "overhead_ms": self.header_float("x-litellm-overhead-duration-ms")}


class GatewayClient:
    """Talks to one gateway at `base_url` (normally http://127.0.0.1:<forwarded port>)."""

    def __init__(self, base_url: str, key: str | None, timeout: float = 60.0) -> None:
        self.base_url, self.key = base_url.rstrip("/"), key
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def alive(self) -> bool:
        try:
            return self.http.get(f"{self.base_url}/health/liveliness", timeout=5).status_code \
                == 200
        except httpx.HTTPError:
            return False

    def loaded_configs(self) -> set[str]:
        """The config hashes the proxy's deployments carry now (/model/info)."""
        r = self.http.get(f"{self.base_url}/model/info", headers=self._headers(self.key),
                          timeout=10)
        r.raise_for_status()
        return {str((d.get("model_info") or {}).get("llmops_config"))
                for d in r.json().get("data", [])}

    def models(self, *, key: str | None = "") -> tuple[int, list[str]]:
        """(HTTP status, the model names listed) of /v1/models, which asks no backend;
        `key=None` sends none."""
        use = self.key if key == "" else key
        r = self.http.get(f"{self.base_url}/v1/models", headers=self._headers(use))
        if r.status_code != 200:
            return r.status_code, []
        return 200, [str(m["id"]) for m in r.json().get("data", [])]

    def chat(self, model: str, prompt: str, max_tokens: int = 8, *, key: str | None = "",
             extra: dict[str, Any] | None = None) -> Answer:
        """One chat completion; `key=None` sends none (the checklist's refusal probe)."""
        use = self.key if key == "" else key
        body = {"model": model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens, "temperature": 0, **(extra or {})}
        began = time.monotonic()
        try:
            r = self.http.post(f"{self.base_url}/v1/chat/completions", json=body,
                               headers=self._headers(use))
        except httpx.HTTPError as exc:
            return Answer(0, time.monotonic() - began, error=f"{type(exc).__name__}: {exc}")
        answer = Answer(r.status_code, time.monotonic() - began,
                        headers={k.lower(): v for k, v in r.headers.items()
                                 if k.lower().startswith("x-litellm")})
        try:
            data = r.json()
        except ValueError:
            answer.error = r.text[:300]
            return answer
        if not answer.ok:
            err = data.get("error") if isinstance(data, dict) else None
            answer.error = str(err.get("message") if isinstance(err, dict) else data)[:300]
            return answer
        choice = (data.get("choices") or [{}])[0]
        answer.text = str((choice.get("message") or {}).get("content") or "")
        usage = data.get("usage") or {}
        answer.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        answer.completion_tokens = int(usage.get("completion_tokens") or 0)
        return answer


@contextmanager
def gateway_client(spec: GatewaySpec, hosts: HostPool, *, key: bool = True,
                   timeout: float = 60.0) -> Iterator[GatewayClient]:
    """A client on a forward to the gateway's port (the key read by name, when `key`)."""
    secret = master_key(spec) if key else None
    t = hosts.transport(spec.host)
    with t.forward(spec.port, reach(spec)) as local:
        client = GatewayClient(f"http://127.0.0.1:{local}", secret, timeout)
        try:
            yield client
        finally:
            client.close()
