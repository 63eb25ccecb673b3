"""Where a host is and how to log in: the spec, validated before anything is written."""

from __future__ import annotations

from pydantic import Field, model_validator

from llmops.ops.kinds.base import Spec

ADDRESS_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$"


class HostSpec(Spec):
    """Where a host is and how to log in; never a secret, only a key's path."""

    local: bool = False
    address: str | None = Field(default=None, pattern=ADDRESS_PATTERN)
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    key: str | None = None
    python: str = Field(default="python3", pattern=r"^[A-Za-z0-9_./~+-]{1,255}$")
    workdir: str = Field(default="~/.llmops", pattern=r"^[A-Za-z0-9_./~+-]{1,255}$")
    cost_per_hour: float | None = Field(default=None, ge=0, le=10_000)
    """What the box costs per hour (any currency): load tests turn it into cost per token."""

    @model_validator(mode="after")
    def _local_or_remote(self) -> HostSpec:
        if self.local and self.address:
            raise ValueError("a local host has no address: drop --address or --local")
        if not self.local and not self.address:
            raise ValueError("a remote host needs an address: give --address or use --local")
        return self
