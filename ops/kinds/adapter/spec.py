"""What an operator asks of a LoRA adapter: which content (by sha256) is served under which
name by which vLLM server. Content-addressed, so a rollback reloads the earlier version by
its sha; the CLI fills `sha256` from the run's output or the path before the action."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, Spec

SHA256_PATTERN = r"^[0-9a-f]{64}$"


def _abs_path(v: str | None, what: str) -> str | None:
    if v is None:
        return v
    if not v.startswith("/") or "\x00" in v or "/../" in v + "/" or "//" in v:
        raise ValueError(f"{what} must be a plain absolute path on the host")
    return v.rstrip("/") or v


class AdapterSpec(Spec):
    """One adapter version (its files' sha256) and where it is deployed; `name` is the name
    requests use as `model`."""

    server: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Server to hot-load it into (none: kept, not served).",
    )
    run: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Run whose final adapter it is."
    )
    path: str | None = Field(
        default=None, description="Or: an adapter folder (absolute path) on the run's host."
    )
    host: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Host where `path` is (default: the server's host).",
    )
    sha256: str = Field(
        pattern=SHA256_PATTERN, description="sha256 over the adapter's files (the version)."
    )
    merge_to: str | None = Field(
        default=None,
        description="Also merge it into the base: a new model folder (absolute path).",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return _abs_path(v, "path")

    @field_validator("merge_to")
    @classmethod
    def _merge_to(cls, v: str | None) -> str | None:
        return _abs_path(v, "merge_to")

    @model_validator(mode="after")
    def _source(self) -> AdapterSpec:
        if (self.run is None) == (self.path is None):
            raise ValueError("give the adapter's source: run or path (one of them)")
        if self.run and self.host:
            raise ValueError("host goes with path; a run's adapter is on the run's host")
        if self.path and not (self.host or self.server):
            raise ValueError("a path needs the host it is on (host) or a server")
        return self

    def short_sha(self) -> str:
        return self.sha256[:12]
