"""What an operator asks of a gateway: one OpenAI endpoint (a LiteLLM proxy) in front of lab
servers, routed by model name, with fallbacks, retries, a cache and per-token prices.

Servers are named by their lab NAMES, never by URL: the config LiteLLM reads is generated
from the lab (`config.py`). The master key is never a field, only the NAME of the
environment variable holding it; LiteLLM gets its value through the detached process's
environment, so no plan, journal row, config file or commit holds it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, NAME_RE, Spec
from llmops.ops.secretref import keyring_ref

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
"""A model name clients ask for (`chat`, `qwen-7b`, `gpt-4o-mini`)."""
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
VERSION_PATTERN = r"^1\.(\d{1,3})\.(\d{1,3})$"
LITELLM_VERSION = "1.108.7"
"""The pinned LiteLLM: from 1.109 its `[proxy]` extra needs a `litellm-proxy` package some
registries don't serve (see the notes); 1.108.x is what was tested here."""
MAX_MODELS = 32


def looks_like_a_key(v: str) -> bool:
    """A value where a NAME belongs: not an upper-case name, or one that is mostly digits."""
    if not re.match(ENV_NAME_PATTERN, v):
        return True
    digits = sum(c.isdigit() for c in v)
    return len(v) >= 20 and digits * 3 >= len(v)


class TokenPrice(BaseModel):
    """What a server's tokens cost, per million (any currency; the bench's cost by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_1m: float = Field(ge=0, le=1_000_000)
    output_per_1m: float = Field(ge=0, le=1_000_000)


class GuardModel(BaseModel):
    """A safety classifier (a lab server on vLLM's pooling runner) asked about every prompt of
    a model before the request goes out: a top label of `label` with a probability of at least
    `threshold` is refused. When it does not answer within `timeout_s`, `on_error` says what
    happens: `closed` (the default) refuses the request, `open` lets it through unchecked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str = Field(pattern=NAME_PATTERN, description="The classifier's lab server name.")
    label: str = Field(default="unsafe", pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}$",
                       description="The classifier's label that blocks.")
    threshold: float = Field(default=0.5, gt=0, le=1,
                             description="The least probability of that label that blocks.")
    on_error: Literal["closed", "open"] = Field(
        default="closed", description="closed: refuse when the guard fails; open: pass.")
    timeout_s: float = Field(default=5.0, gt=0, le=60,
                             description="Seconds the guard may take per request.")


def _abs_path(v: str | None) -> str | None:
    if v is None:
        return v
    if not v.startswith("/"):
        raise ValueError("venv must be an absolute path on the host")
    if not re.match(r"^[A-Za-z0-9_./+-]{1,255}$", v) or ".." in v.split("/") or "//" in v:
        raise ValueError("venv must be a plain path (letters, digits, ._+-/, no '..')")
    return v.rstrip("/") or v


class GatewaySpec(Spec):
    """One LiteLLM proxy on a host, exposing model names routed to lab servers."""

    host: str = Field(pattern=NAME_PATTERN, description="Host the gateway runs on.")
    port: int = Field(default=4000, ge=1024, le=65535, description="Port clients use.")
    listen: str = Field(
        default="127.0.0.1",
        pattern=r"^([0-9.]{7,15}|[0-9a-fA-F:]{2,39}|localhost)$",
        description="Address the port listens on (0.0.0.0 for all).",
    )
    models: dict[str, list[str]] = Field(
        description="Model name -> the lab servers that serve it (by name).",
    )
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict, description="Model name -> model names tried when it fails.",
    )
    num_retries: int = Field(default=0, ge=0, le=10, description="Retries per request.")
    allowed_fails: int = Field(
        default=1, ge=0, le=100, description="Failures before a backend cools down.",
    )
    cooldown_s: float = Field(
        default=30.0, ge=0, le=3600, description="Seconds a failing backend is left out.",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds a backend may take to answer.",
    )
    cache: bool = Field(default=False, description="Answer repeated requests from a cache.")
    cache_ttl_s: int = Field(
        default=300, ge=1, le=86_400, description="Seconds a cached answer is kept.",
    )
    guardrails: list[str] = Field(
        default_factory=list,
        description="Model names whose prompts are screened and answers redacted.",
    )
    guards: dict[str, GuardModel] = Field(
        default_factory=dict,
        description="Model name -> the guard model (a classifier server) asked before it.",
    )
    prices: dict[str, TokenPrice] = Field(
        default_factory=dict,
        description="Server name -> cost per 1M input/output tokens (default: its bench).",
    )
    master_key_env: str = Field(
        default="LITELLM_MASTER_KEY",
        pattern=ENV_NAME_PATTERN,
        description="NAME of the environment variable holding the master key (never the key).",
    )
    master_key_keyring: str | None = Field(
        default=None,
        description="SERVICE/USER of the OS keyring entry holding the master key (instead of "
        "this machine's variable; the proxy still reads it from master_key_env on the host).",
    )
    litellm_version: str = Field(
        default=LITELLM_VERSION, pattern=VERSION_PATTERN,
        description="The LiteLLM release installed into the gateway's venv.",
    )
    venv: str | None = Field(
        default=None,
        description="The venv on the host (default: <workdir>/gateways/litellm-<version>).",
    )
    env: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="An llmops env on the gateway's host whose venv pins "
        "litellm[proxy]==<litellm_version> and gunicorn: run on it instead of installing a "
        "venv (then no `venv`).",
    )

    @field_validator("master_key_env", mode="before")
    @classmethod
    def _key_name(cls, v: object) -> object:
        if isinstance(v, str) and looks_like_a_key(v):
            raise ValueError(
                "give the NAME of an environment variable that holds the key (e.g. "
                "LITELLM_MASTER_KEY), never the key itself"
            )
        return v

    @field_validator("master_key_keyring")
    @classmethod
    def _key_entry(cls, v: str | None) -> str | None:
        return None if v is None else keyring_ref(v)

    @field_validator("litellm_version")
    @classmethod
    def _version(cls, v: str) -> str:
        minor = int(v.split(".")[1])
        if minor >= 109:
            raise ValueError(
                f"LiteLLM {v}: from 1.109 its [proxy] extra needs the litellm-proxy package; "
                f"use {LITELLM_VERSION} (tested)"
            )
        return v

    @field_validator("venv")
    @classmethod
    def _venv(cls, v: str | None) -> str | None:
        return _abs_path(v)

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("expose at least one model: models = {NAME = [SERVER, ...]}")
        if len(v) > MAX_MODELS:
            raise ValueError(f"at most {MAX_MODELS} model names per gateway")
        for model, servers in v.items():
            if not MODEL_NAME_RE.match(model):
                raise ValueError(
                    f"model name {model!r}: use letters, digits, '.', '_' or '-' (1-64)"
                )
            if not servers:
                raise ValueError(f"model {model!r} names no server: give at least one")
            for server in servers:
                if not NAME_RE.match(server):
                    raise ValueError(
                        f"model {model!r}: {server!r} is not a server name (lab names, "
                        "never URLs)"
                    )
            if len(set(servers)) != len(servers):
                raise ValueError(f"model {model!r} names a server twice")
        return v

    @model_validator(mode="after")
    def _references(self) -> GatewaySpec:
        if self.env is not None and self.venv is not None:
            raise ValueError(f"venv: give either env ({self.env}: its venv) or venv, not both")
        for model, others in self.fallbacks.items():
            if model not in self.models:
                raise ValueError(f"fallbacks: {model!r} is not one of the models "
                                 f"({', '.join(self.models)})")
            for other in others:
                if other not in self.models:
                    raise ValueError(f"fallbacks: {model} -> {other!r}, which is not one of "
                                     f"the models ({', '.join(self.models)})")
                if other == model:
                    raise ValueError(f"fallbacks: {model} falls back to itself")
        for model in self.guardrails:
            if model not in self.models:
                raise ValueError(f"guardrails: {model!r} is not one of the models "
                                 f"({', '.join(self.models)})")
        if len(set(self.guardrails)) != len(self.guardrails):
            raise ValueError("guardrails: a model is named twice")
        for model, guard in self.guards.items():
            if model not in self.models:
                raise ValueError(f"guards: {model!r} is not one of the models "
                                 f"({', '.join(self.models)})")
            if guard.server in self.models[model]:
                raise ValueError(f"guards.{model}: {guard.server} serves {model} itself; a "
                                 "guard is another server (a classifier)")
        served = set(self.servers())
        for server in self.prices:
            if server not in served:
                raise ValueError(f"prices: {server!r} is not a server of any model")
        return self

    def servers(self) -> list[str]:
        """Every server the gateway routes to, in the order the models name them."""
        return list(dict.fromkeys(s for servers in self.models.values() for s in servers))

    def guard_servers(self) -> list[str]:
        """The classifier servers the guards name (not routes: no model answers from them)."""
        return list(dict.fromkeys(g.server for g in self.guards.values()))

    def all_servers(self) -> list[str]:
        """Every server the gateway's config names: its routes' and its guards'."""
        return list(dict.fromkeys([*self.servers(), *self.guard_servers()]))

    def litellm_pins(self) -> tuple[str, str]:
        """What an env the gateway runs on must pin (env's canonical `name[extras]==v`)."""
        return f"litellm[proxy]=={self.litellm_version}", "gunicorn"

    def tunnel_port(self, server: str) -> int:
        """The local port of the gateway's tunnel to `server` (used only when it needs one):
        the gateway's port + 100 + the server's place among the servers it names, by name."""
        return self.port + 100 + sorted(self.all_servers()).index(server)

    def tunnel_proc(self, server: str) -> str:
        return f"gateway.{self.name}.tunnel.{server}"

    def venv_path(self, workdir: str) -> str:
        return self.venv or f"{workdir}/gateways/litellm-{self.litellm_version}"

    def proc_name(self) -> str:
        return f"gateway.{self.name}"

    def install_proc(self) -> str:
        return f"gateway.{self.name}.install"
