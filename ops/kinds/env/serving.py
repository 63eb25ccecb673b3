"""What a server running on an env needs of it: the python to start vLLM with (the venv of
the set the env's path points at now) and the env's identity for the server's launch hash;
and (pure) whether an action on the env must take the servers on it along."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.env.apply import observe
from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def launch_facts(name: str, hosts: HostPool) -> dict[str, Any]:
    """{"name", "python", "set", "manifest", "venv"} of env `name` as its host holds it now
    (envctl's inspect, no freeze: ~0.1 s); {"name", "error"} when the env is not in the lab,
    its venv is not built, or the host does not answer (the server's plan then refuses to
    start it rather than fall back to the host's python)."""
    spec = hosts.desired("env", name)
    if not isinstance(spec, EnvSpec):
        return {"name": name, "error": f"there is no env named {name}"}
    try:
        found = observe(spec, hosts)
    except (TransportError, OSError) as exc:
        return {"name": name, "error": str(exc)}
    if found.foreign or not found.link or not found.root:
        return {"name": name, "error": "its venv path is not a venv llmops built"
                if found.foreign else "its venv is not built yet"}
    return {"name": name, "python": f"{found.root}/venvs/{found.link}/bin/python",
            "set": found.link, "manifest": found.manifests.get(found.link),
            "venv": found.venv}


def venv_identity(spec: Spec | None) -> tuple[Any, ...] | None:
    """(pure) What decides which venv an env's servers run on: host, venv path, and the set
    (pins + python)."""
    if not isinstance(spec, EnvSpec):
        return None
    return (spec.host, spec.venv, spec.set_sha())


def servers_follow(before: Spec | None, after: Spec | None) -> bool:
    """(pure) An action on an env takes the servers on it along when the venv they run on
    changes (an upgrade, a rollback, a move) or when the env is reconciled as it is (a
    repair through `rollback --last-good`: the servers are checked after it); a change of
    how packages are fetched (mode, index, keep_previous) leaves them alone."""
    return before == after or venv_identity(before) != venv_identity(after)
