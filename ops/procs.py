"""Detached processes on a host that outlive the console and the SSH session.

The work happens on the host in hostside/procctl.py (stdlib only), sent as `python -c`;
this module types its JSON answers. A record holds pid + start time, so a pid that went to
another program is reported as `reused`, never signalled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Literal

from llmops.ops.transport import Transport, TransportError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,80}$")

State = Literal["running", "exited", "missing", "reused"]


class ProcError(TransportError):
    """The host refused a process operation (already running, bad cwd, program not found)."""


@dataclass(frozen=True)
class ProcInfo:
    """What the host knows about one named process."""

    name: str
    state: State
    pid: int | None = None
    started_at: str | None = None
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    env_keys: list[str] = field(default_factory=list)
    log: str | None = None
    rc: int | None = None
    ended_at: str | None = None
    stopped: str | None = None  # after stop(): "term", "kill" or "not running"
    seconds: float | None = None  # after stop(): how long stopping took

    @property
    def running(self) -> bool:
        return self.state == "running"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcInfo:
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in known})


@cache
def procctl_source() -> str:
    return files("llmops.ops.hostside").joinpath("procctl.py").read_text()


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(f"bad process name {name!r}: use lowercase letters, digits, '.' or '-'")
    return name


def _call(t: Transport, op: str, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Run one procctl operation; the request goes on stdin so env values stay out of ps."""
    request = {"workdir": t.workdir, **request}
    done = t.python_script(procctl_source(), [op], input=json.dumps(request), timeout=timeout)
    try:
        reply = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise ProcError(f"procctl {op} on {t.host} failed (exit {done.returncode}): "
                        f"{tail or 'no output'}") from None
    if "error" in reply:
        raise ProcError(f"{t.host}: {reply['error']}")
    return reply


def start(t: Transport, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          cwd: str | None = None) -> ProcInfo:
    """Start argv detached in its own session, logging to <workdir>/run/<name>/log."""
    if not argv:
        raise ValueError("empty argv")
    request = {"name": check_name(name), "argv": list(argv), "env": dict(env or {}), "cwd": cwd}
    return ProcInfo.from_json(_call(t, "start", request))


def status(t: Transport, name: str) -> ProcInfo:
    return ProcInfo.from_json(_call(t, "status", {"name": check_name(name)}))


def stop(t: Transport, name: str, grace: float = 10.0) -> ProcInfo:
    """SIGTERM the process's session, SIGKILL what is left after `grace` seconds."""
    reply = _call(t, "stop", {"name": check_name(name), "grace": grace}, timeout=grace + 30)
    return ProcInfo.from_json(reply)


def tail(t: Transport, name: str, lines: int = 50) -> list[str]:
    return list(_call(t, "tail", {"name": check_name(name), "lines": lines})["lines"])


def read_log(t: Transport, name: str, offset: int) -> tuple[list[str], int]:
    """Log lines written since byte `offset`, and the offset to ask from next (to follow)."""
    reply = _call(t, "tail", {"name": check_name(name), "offset": offset})
    return list(reply["lines"]), int(reply["offset"])


def list_procs(t: Transport) -> list[ProcInfo]:
    return [ProcInfo.from_json(item) for item in _call(t, "list", {})["procs"]]
