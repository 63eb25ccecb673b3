"""A port another process holds is refused before the action, not met by the start step.

Met at the start, the action fails and its revert's "port closed" check fails too (the port
was never ours), so the operator reads "failed, revert unverified" for plain bad input."""

from __future__ import annotations

from llmops.ops import procs
from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.hoststate import port_answers
from llmops.ops.kinds.server.apply import proc_names
from llmops.ops.kinds.server.launch import LOOPBACK, reach_address
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport


def refuse_foreign_port(spec: ServerSpec, t: Transport) -> None:
    """Each port the server will listen on must be free, unless one of its own processes runs
    (a change or a rollback of a running server: its ports answer, as they should)."""
    mine = set(proc_names(spec.name))
    if any(p.running and p.name in mine for p in procs.list_procs(t)):
        return
    for port in sorted(spec.ports()):
        address = reach_address(spec) if port == spec.port else LOOPBACK  # colours: loopback
        if port_answers(t, port, address):
            raise SpecError(
                "port",
                f"port {port} on {spec.host} is in use by a process llmops did not start",
                "pick another port (--port, or --colour-ports for blue-green), or stop what"
                " listens there",
            )
