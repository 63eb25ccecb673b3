"""Probing a host: the stdlib script run with the host's python, its facts as a dict."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Progress
from llmops.ops.transport import HostAddress, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

STABLE_FACTS = ("os", "arch", "cpu_count", "gpu_names")


def probe(spec: HostAddress, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Run the probe script with the host's python; facts as a dict."""
    transport = hosts.transport(spec.name)
    progress(f"probing {spec.name}")
    source = resources.files("llmops.ops.hostside").joinpath("probe.py").read_text()
    done = transport.python_script(source, [spec.workdir], timeout=60.0)
    if done.returncode != 0:
        raise TransportError(
            f"probe of {spec.name} failed with {spec.python}: {done.stderr.strip()[-400:]}"
        )
    facts: dict[str, Any] = json.loads(done.stdout)
    facts["gpu_names"] = [g["name"] for g in facts.get("gpus", [])]
    return facts
