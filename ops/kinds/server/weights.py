"""A server's model weights on its host: the server's side of `ops/kinds/weights.py` (which
runs and any other kind that loads a model share): a path model must be there, hub weights
are fetched into the host's cache before anything stops, config.json feeds the estimate."""

from __future__ import annotations

from typing import Any

from llmops.ops.kinds import weights
from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.kinds.weights import WeightsError, make_tiny_model
from llmops.ops.kinds.weights import result_line as _result_line
from llmops.ops.transport import Transport

__all__ = [
    "WeightsError",
    "_result_line",
    "check_model",
    "fetch_weights",
    "make_tiny_model",
    "model_config",
]


def _revision(spec: ServerSpec) -> str | None:
    return str(spec.args.get("revision") or "") or None


def check_model(spec: ServerSpec, t: Transport) -> None:
    """A path model must be a folder with config.json on the host, before anything stops."""
    weights.require_model_folder(t, spec.model, host=spec.host, field="model")


def model_config(spec: ServerSpec, t: Transport) -> dict[str, Any]:
    """config.json of a path model, or of a hub model's cached snapshot; {} when unreadable."""
    return weights.model_config(t, spec.model, _revision(spec))


def fetch_weights(spec: ServerSpec, t: Transport, progress: Progress) -> dict[str, Any]:
    """Hub weights into the host's cache (instant when cached), progress lines on the way;
    raises before anything is stopped when the download fails."""
    return weights.fetch_weights(t, spec.model, _revision(spec), host=spec.host, progress=progress)
