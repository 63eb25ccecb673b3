"""Where a host is and how to log in: the spec, validated before anything is written."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from llmops.ops.kinds.base import Spec

ADDRESS_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$"
DEFAULT_DATA_DIRS = ("~/llmops-data/training", "~/llmops-data/validation")
DATA_DIR = re.compile(r"^(/|~/)[A-Za-z0-9_./+-]{0,255}$")


class HostSpec(Spec):
    """Where a host is and how to log in; never a secret, only a key's path."""

    local: bool = Field(default=False, description="This machine, without SSH.")
    address: str | None = Field(
        default=None, pattern=ADDRESS_PATTERN, description="IP address or DNS name of the host."
    )
    port: int = Field(default=22, ge=1, le=65535, description="The host's SSH port.")
    user: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_.-]{0,31}$",
        description="Login user (default: your user name).",
    )
    key: str | None = Field(
        default=None,
        pattern=r"^[^\x00-\x1f\x7f]{1,4096}$",
        description="Path of the private key file (default: ssh-agent, ~/.ssh keys).",
    )
    python: str = Field(
        default="python3",
        pattern=r"^[A-Za-z0-9_./~+-]{1,255}$",
        description="The host's python (the one with vLLM/peft installed).",
    )
    workdir: str = Field(
        default="~/.llmops",
        pattern=r"^[A-Za-z0-9_./~+-]{1,255}$",
        description="Where llmops keeps run files on the host.",
    )
    cost_per_hour: float | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="What the box costs per hour (for cost per token).",
    )
    """Any currency: load tests turn it into cost per token (a server's share: its GPUs over
    the host's; all of it on a CPU-only host)."""
    power_watts: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="The box's power draw in watts (used where NVML reports no power).",
    )
    price_per_kwh: float | None = Field(
        default=None,
        ge=0,
        le=1_000,
        description="Electricity price per kWh (same currency as cost_per_hour).",
    )
    """Energy is priced when this is set: NVML's measured power of a server's GPUs during a
    bench where the host reports it, else power_watts shared like cost_per_hour."""
    data_dirs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DATA_DIRS),
        min_length=1,
        max_length=16,
        description="Folders runs may read training data from.",
    )
    """A run's dataset must be a file under one of these (after symlinks are resolved)."""

    @field_validator("data_dirs")
    @classmethod
    def _data_dirs(cls, v: list[str]) -> list[str]:
        for d in v:
            if not DATA_DIR.match(d) or ".." in d.split("/"):
                raise ValueError(f"{d!r}: give absolute folders or ones under ~/, no '..'")
        return [d.rstrip("/") for d in v]

    @model_validator(mode="after")
    def _local_or_remote(self) -> HostSpec:
        if self.local and self.address:
            raise ValueError("a local host has no address: drop --address or --local")
        if not self.local and not self.address:
            raise ValueError("a remote host needs an address: give --address or use --local")
        return self
