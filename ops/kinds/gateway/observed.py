"""What observe finds of a gateway, and what each plan step carries: typed, so the pure plan
and the thin apply agree on names (the plan cases build both from TOML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.kinds.base import Observed, StepData


class BackendSeen(BaseModel):
    """A server the spec routes to, resolved from the lab: how the gateway reaches it, or why
    it cannot (`error`)."""

    model_config = ConfigDict(extra="forbid")

    api_base: str | None = None
    api_model: str | None = None
    error: str | None = None
    tunnel: int | None = None
    """Reached through the gateway's SSH tunnel on this local port (tunnels.py)."""
    tunnel_argv: list[str] = Field(default_factory=list)
    """The tunnel's command (no secret in it: the key's path, never the key)."""


class TunnelSeen(BaseModel):
    """A tunnel process of the gateway: running, and the launch hash it was started with."""

    model_config = ConfigDict(extra="forbid")

    running: bool = False
    crashed: bool = False
    launch: str | None = None


class GatewayObserved(Observed):
    """The venv's LiteLLM, the config file on the host, the process and what it loaded."""

    facts: dict[str, Any] = Field(default_factory=dict)
    """The host's facts (workdir, python)."""
    venv_version: str | None = None
    """The LiteLLM release the venv holds, from the marker its install wrote (None: none)."""
    installing: bool = False
    """An install process of this gateway runs now (a reconcile that died left it)."""
    config_hash: str | None = None
    """The hash the config file on the host carries (None: no file)."""
    proc_running: bool = False
    proc_crashed: bool = False
    """The process exited without being stopped."""
    proc_hash: str | None = None
    """The launch hash the running process was started with."""
    loaded_hash: str | None = None
    """The config hash the running process loaded (its start or its last reload)."""
    backends: dict[str, BackendSeen] = Field(default_factory=dict)
    hooks_source: str = ""
    """The callbacks module as this llmops ships it (part of the config's hash)."""
    tunnels: dict[str, TunnelSeen] = Field(default_factory=dict)
    """The gateway's tunnel processes by server (the ones wanted and the ones it recorded)."""
    hooks_ok: bool = True
    """The callbacks module beside the config on the host is the one this llmops ships (False:
    edited or replaced by hand; the config's hash cannot see that: written and reloaded)."""


@dataclass(frozen=True)
class GatewayStep(StepData):
    """A gateway step's payload."""

    proc: str | None = None
    venv: str | None = None
    version: str | None = None
    config: str | None = None
    """write-config: the file's text (no secret in it: the key is named, not given)."""
    hash: str | None = None
    """start / reload / wait-ready: the config hash; start: the launch hash in `launch`."""
    launch: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    server: str | None = None
    """tunnel: the server it reaches."""
