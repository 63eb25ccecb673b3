"""How the run kind reaches its host-side scripts: trainer.py, dataset.py and
adapter_tools.py from ops/hostside (copied to <workdir>/bin/ for what runs detached, sent as
`python -c` for one-shot reads) and hostread.py beside this file (reads a run's folder)."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

from llmops.ops import procs
from llmops.ops.kinds.run import layout
from llmops.ops.transport import Transport, TransportError


class RunError(RuntimeError):
    """A step failed on the host; the message is one line (the cause, where the log is)."""


# -- host-side scripts ----------------------------------------------------------------------
@cache
def hostside_source(script: str) -> str:
    return files("llmops.ops.hostside").joinpath(script).read_text()


@cache
def hostread_source() -> str:
    return files("llmops.ops.kinds.run").joinpath("hostread.py").read_text()


def last_json(text: str) -> dict[str, Any] | None:
    """The last stdout line that is a JSON object (the scripts' answer)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return None


def hostread(t: Transport, op: str, *args: str, timeout: float = 60.0) -> dict[str, Any]:
    """One read of the run's folder on the host (hostread.py): changes nothing."""
    done = t.python_script(hostread_source(), [op, *args], timeout=timeout)
    found = last_json(done.stdout)
    if done.returncode != 0 or found is None:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise TransportError(f"reading the run's files on {t.host} failed: {tail or 'no output'}")
    return found


def one_shot(
    t: Transport, script: str, args: list[str], timeout: float = 600.0
) -> tuple[dict[str, Any], str]:
    """A host-side script's answer (its last JSON line) and its stderr, offline from the hub."""
    argv = [t.python, "-c", hostside_source(script), *args]
    done = t.run(argv, timeout=timeout, env={"HF_HUB_OFFLINE": "1"})
    found = last_json(done.stdout)
    if found is None:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        found = {"ok": False, "error": f"{script} exited {done.returncode}: {tail or 'no output'}"}
    return found, done.stderr


def install_scripts(t: Transport, facts: dict[str, Any]) -> None:
    """The trainer and its helpers into <workdir>/bin/ (together: they import each other)."""
    for script in layout.SCRIPTS:
        t.write_text(layout.bin_path(facts, script), hostside_source(script), mode=0o644)

CAUSE = re.compile(r"Error\b|Exception\b|\berror:|Killed|Refused")


def cause(t: Transport, proc: str, stuck: bool = False) -> str:
    """The last error line of the process's log (for one stuck, its last line)."""
    tail = [line.strip() for line in procs.tail(t, proc, 40) if line.strip()]
    tail = [line for line in tail if not line.startswith("--- exit")]
    errors = [] if stuck else [line for line in tail if CAUSE.search(line)]
    causes = errors or tail[-1:]
    return causes[-1][:240] if causes else "its log is empty"


def log_path(t: Transport, proc: str) -> str:
    return procs.status(t, proc).log or f"run/{proc}/log in the host's workdir"
