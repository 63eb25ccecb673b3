"""Model weights on a host: a path model must be there, hub weights are fetched into the
host's cache before anything stops, and config.json is read for the memory estimate."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from llmops.ops.hostside.fetch_weights import RESULT
from llmops.ops.kinds.base import Progress, SpecError
from llmops.ops.kinds.server.launch import is_path_model
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport, TransportError


class WeightsError(RuntimeError):
    """The model's weights could not be put on the host (download failed, not on the hub)."""


def check_model(spec: ServerSpec, t: Transport) -> None:
    """A path model must be a folder with config.json on the host, before anything stops."""
    if not is_path_model(spec.model):
        return
    done = t.run(["test", "-f", f"{spec.model}/config.json"], timeout=30.0)
    if done.returncode != 0:
        raise SpecError(
            "model",
            f"{spec.model} on {spec.host} is not a model folder (no config.json there)",
            "copy the model there or fix the path",
        )


def _weights_script(t: Transport, op: str, spec: ServerSpec) -> list[str]:
    source = files("llmops.ops.hostside").joinpath("fetch_weights.py").read_text()
    return [t.python, "-c", source, op, spec.model, str(spec.args.get("revision") or "")]


def _result_line(lines: list[str]) -> dict[str, Any]:
    for line in reversed(lines):
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT) :]))
    # no result: the script died; its last line says why (all of it went to progress)
    return {"error": next((x.strip() for x in reversed(lines) if x.strip()), "no output")[:300]}


def model_config(spec: ServerSpec, t: Transport) -> dict[str, Any]:
    """config.json of a path model, or of a hub model's cached snapshot; {} when unreadable."""
    try:
        if is_path_model(spec.model):
            return dict(json.loads(t.read_text(f"{spec.model}/config.json")))
        done = t.run(_weights_script(t, "config", spec), timeout=60.0)
        return dict(_result_line(done.stdout.splitlines()).get("config") or {})
    except (TransportError, OSError, ValueError):
        return {}


def fetch_weights(spec: ServerSpec, t: Transport, progress: Progress) -> dict[str, Any]:
    """Hub weights into the host's cache (instant when cached), progress lines on the way;
    raises before anything is stopped when the download fails or the weights can't fit."""
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if not line.startswith(RESULT):
            progress(line[:300])

    rc = t.stream(_weights_script(t, "fetch", spec), on_line, timeout=6 * 3600.0)
    found = _result_line(lines)
    if rc != 0 or "error" in found:
        raise WeightsError(
            f"weights of {spec.model} are not on {spec.host}; nothing was stopped: "
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
