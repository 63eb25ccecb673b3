"""Host plumbing every kind needs: the host's facts, a kind's state file on the host, and
whether a loopback port answers there. One module, so kinds stop borrowing from each other.

A kind keeps what it must remember about its processes (launch hashes, ports, the live
colour) in `<workdir>/<folder>/<name>.json` on the host, next to what it describes: the
console may die, the host's record stays.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import no_progress
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def host_facts(hosts: HostPool, host: str) -> dict[str, Any]:
    """The host's last probe; probed afresh when the lab has none (never probed)."""
    facts = hosts.facts(host)
    if facts:
        return dict(facts)
    from llmops.ops.kinds.host.probe import probe

    spec = hosts.lookup(host)
    if spec is None:
        raise TransportError(f"no host named {host!r} in the lab")
    return probe(spec, hosts, no_progress)


def has_gpus(facts: dict[str, Any]) -> bool:
    """A host counts as a GPU host when its last probe saw at least one GPU."""
    return bool(facts.get("gpus"))


def state_path(facts: dict[str, Any], folder: str, name: str, suffix: str = ".json") -> str:
    """Where a kind's record of one resource lives on the host."""
    return f"{facts['workdir']}/{folder}/{name}{suffix}"


def read_state(t: Transport, facts: dict[str, Any], folder: str, name: str) -> dict[str, Any]:
    """The kind's record of the resource's processes; an empty record when there is none."""
    try:
        return dict(json.loads(t.read_text(state_path(facts, folder, name))))
    except (TransportError, OSError, ValueError):
        return {"procs": {}}


def write_state(
    t: Transport, facts: dict[str, Any], folder: str, name: str, state: dict[str, Any]
) -> None:
    t.write_text(state_path(facts, folder, name), json.dumps(state, indent=1, sort_keys=True))


PORT_PROBE = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET)\n"
    "s.settimeout(3)\n"
    "sys.exit(0 if s.connect_ex((sys.argv[2], int(sys.argv[1]))) == 0 else 1)\n"
)


def port_answers(t: Transport, port: int, address: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on the host's port (loopback unless a server
    listens on one address only), asked on the host: a tunnel's local end accepts before it
    knows whether the far end will."""
    return t.python_script(PORT_PROBE, [str(port), address], timeout=30).returncode == 0
