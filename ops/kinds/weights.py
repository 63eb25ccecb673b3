"""Model weights on a host, for every kind that loads a model (a server serves one, a run
trains on one): a path model must be a folder with config.json there, hub weights are
fetched into the host's own HF cache before anything stops, and config.json is read for the
memory estimates. Kind-neutral: it knows a model by its id or path, not by a kind's spec."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from llmops.ops.hostside.fetch_weights import RESULT
from llmops.ops.kinds.base import Progress, SpecError
from llmops.ops.transport import Transport, TransportError


class WeightsError(RuntimeError):
    """The model's weights could not be put on the host (download failed, not on the hub)."""


def is_path_model(model: str) -> bool:
    """A folder on the host rather than a hub id."""
    return model.startswith("/") or model.startswith("~")


def require_model_folder(t: Transport, model: str, *, host: str, field: str) -> None:
    """A path model must be a folder with config.json on the host (hub ids pass: the plan
    fetches them); raises SpecError naming the spec's field."""
    if not is_path_model(model):
        return
    done = t.run(["test", "-f", f"{model}/config.json"], timeout=30.0)
    if done.returncode != 0:
        raise SpecError(
            field,
            f"{model} on {host} is not a model folder (no config.json there)",
            "copy the model there or fix the path",
        )


def weights_script(t: Transport, op: str, model: str, revision: str | None) -> list[str]:
    source = files("llmops.ops.hostside").joinpath("fetch_weights.py").read_text()
    return [t.python, "-c", source, op, model, revision or ""]


def result_line(lines: list[str]) -> dict[str, Any]:
    """The script's `@@ {...}` answer; without one it died, and its last line says why."""
    for line in reversed(lines):
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT) :]))
    return {"error": next((x.strip() for x in reversed(lines) if x.strip()), "no output")[:300]}


def model_config(t: Transport, model: str, revision: str | None = None) -> dict[str, Any]:
    """config.json of a path model, or of a hub model's cached snapshot; {} when unreadable
    (never the network)."""
    try:
        if is_path_model(model):
            return dict(json.loads(t.read_text(f"{model}/config.json")))
        done = t.run(weights_script(t, "config", model, revision), timeout=60.0)
        return dict(result_line(done.stdout.splitlines()).get("config") or {})
    except (TransportError, OSError, ValueError):
        return {}


def fetch_weights(
    t: Transport, model: str, revision: str | None, *, host: str, progress: Progress
) -> dict[str, Any]:
    """Hub weights into the host's cache (instant when cached), progress lines on the way;
    raises WeightsError, before anything is stopped, when the download fails."""
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if not line.startswith(RESULT):
            progress(line[:300])

    rc = t.stream(weights_script(t, "fetch", model, revision), on_line, timeout=6 * 3600.0)
    found = result_line(lines)
    if rc != 0 or "error" in found:
        raise WeightsError(
            f"weights of {model} are not on {host}; nothing was stopped: "
            + str(found.get("error") or f"exit {rc}")
        )
    return found


def make_tiny_model(t: Transport, model_dir: str, timeout: float = 600.0) -> bool:
    """The tests' and the demo's tiny Llama, made on the host by its own python (~5 s) unless
    it is there already; True when it was made now. Needs torch/transformers on the host."""
    if t.run(["test", "-f", f"{model_dir}/config.json"], timeout=30.0).returncode == 0:
        return False
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    done = t.python_script(source, [model_dir], timeout=timeout)
    if done.returncode != 0:
        raise WeightsError(
            "could not make the tiny model (is the host extra installed? `make host-extras`):\n"
            + done.stderr[-2000:]
        )
    return True
