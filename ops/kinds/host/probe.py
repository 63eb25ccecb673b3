"""Probing a host: the stdlib script run with the host's python, its facts as a dict, and what
starting a command costs there (a slow shell startup is named, not left to time out)."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Progress
from llmops.ops.transport import SHELL_STARTUP, SLOW_START_S, HostAddress, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

STABLE_FACTS = ("os", "arch", "cpu_count", "gpu_names")
START_REUSE_S = 60.0
"""A command start measured this recently is reused (an action's probe, then its checklist's)."""


def probe(spec: HostAddress, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Run the probe script with the host's python; facts as a dict, with `command_start_s`:
    the smaller of a `true`'s round trip and the probe's own (both pay the shell's startup, so
    one hiccup does not make a host slow, and a slow host pays one extra command, not two)."""
    transport = hosts.transport(spec.name)
    progress(f"probing {spec.name}")
    start = transport.measure_start(timeout=60.0, max_age=START_REUSE_S)
    source = resources.files("llmops.ops.hostside").joinpath("probe.py").read_text()
    done = transport.python_script(source, [spec.workdir], timeout=60.0)
    if done.returncode != 0:
        raise TransportError(
            f"probe of {spec.name} failed with {spec.python}: {done.stderr.strip()[-400:]}"
        )
    if done.seconds < start:
        start = transport.noted_start(done.seconds)
    facts: dict[str, Any] = json.loads(done.stdout)
    facts["gpu_names"] = [g["name"] for g in facts.get("gpus", [])]
    start = facts["command_start_s"] = round(start, 3)  # the note says the figure shown
    if start > SLOW_START_S:
        facts["command_start_note"] = slow_start_note(spec, start)
        progress(facts["command_start_note"])
    return facts


def slow_start_note(spec: HostAddress, seconds: float) -> str:
    """Why every action on this host is slow, in the operator's words (not a failure)."""
    head = f"each command on {spec.name} takes {seconds:.1f}s to start"
    if spec.local:  # no shell runs there: the machine itself is slow to start a process
        return f"{head}: this machine is loaded (CPU, memory); every action on it pays this"
    who = spec.user or "the login user"
    return (f"{head}: the shell startup of {who} there {SHELL_STARTUP} is slow; every action "
            "on it pays this")
