"""The cluster kind's host plumbing: raynode (the stdlib host-side script) per node, and
each node's record (the launch hash it was started with) in <workdir>/clusters/."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds import hoststate
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

FOLDER = "clusters"


class RayNodeError(TransportError):
    """raynode failed on a host (its message says why): an action failure, exit 1."""


@cache
def raynode_source() -> str:
    return files("llmops.ops.hostside").joinpath("raynode.py").read_text()


def call(t: Transport, op: str, request: dict[str, Any], timeout: float = 120.0
         ) -> dict[str, Any]:
    done = t.python_script(raynode_source(), [op], input=json.dumps(request), timeout=timeout)
    try:
        reply = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RayNodeError(f"raynode {op} on {t.host} failed (exit {done.returncode}): "
                           f"{tail or 'no output'}") from None
    if "error" in reply:
        raise RayNodeError(f"raynode {op} on {t.host}: {reply['error']}")
    return reply


def node_facts(hosts: HostPool, host: str, interface: str) -> dict[str, Any]:
    """Versions, the interface (present, up, address) and the python, as the node sees them."""
    return call(hosts.transport(host), "facts", {"interface": interface}, timeout=60)


def gcs_view(hosts: HostPool, head: str, address: str, port: int) -> dict[str, Any]:
    """Nodes and placement groups as the head's GCS sees them (a short-lived driver)."""
    return call(hosts.transport(head), "status", {"address": address, "port": port},
                timeout=90)


def worker_logs(hosts: HostPool, host: str, temp_dir: str, lines: int = 5, files: int = 3
                ) -> list[dict[str, Any]]:
    """The newest Ray worker logs of one node ({file, lines}), newest first: what the vLLM
    ranks placed there said (a rank's traceback is in its worker-*.err); then, as file
    `raylet.out`, the raylet's lines about workers it killed for memory (a rank's own log
    just stops)."""
    reply = call(hosts.transport(host), "worker_logs",
                 {"temp_dir": temp_dir, "lines": lines, "files": files}, timeout=60)
    killed = list(reply.get("killed") or [])
    return [*(reply.get("logs") or []), *([{"file": "raylet.out", "lines": killed}]
                                          if killed else [])]


def read_record(hosts: HostPool, host: str, name: str) -> dict[str, Any]:
    return hoststate.read_state(hosts.transport(host), host_facts(hosts, host), FOLDER, name)


def write_record(hosts: HostPool, host: str, name: str, record: dict[str, Any]) -> None:
    hoststate.write_state(hosts.transport(host), host_facts(hosts, host), FOLDER, name, record)
