"""The env kind's host plumbing: where things live on the host and how envctl (the stdlib
host-side script, ops/hostside/envctl.py and its parts envctl_*.py, sent as one bundled
script) is called. One JSON line comes back per call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

SCRIPT = "envctl.py"
MODULES = ("envctl_lib", "envctl_check", "envctl_build", "envctl")
"""envctl and its parts (ops/hostside), in the order they import each other."""


class EnvError(TransportError):
    """A host-side environment operation failed; the message is pip's or envctl's (a
    failure on the host, as the transport's: exit 1, the action reverted)."""


@dataclass(frozen=True)
class Layout:
    """Where an environment's parts are on its host (paths as the host spells them)."""

    root: str
    venv: str
    wheelhouse: str
    script: str

    def job(self, target: str) -> str:
        return f"{self.root}/jobs/{target}.json"

    def result(self, target: str) -> str:
        return f"{self.root}/jobs/{target}.result.json"

    def resolved(self, target: str) -> str:
        """The pins' resolution fetched with the wheels (wheelhouse mode, a clean-up)."""
        return f"{self.root}/jobs/{target}.resolved.json"


def layout(spec: EnvSpec, facts: dict[str, Any]) -> Layout:
    workdir = str(facts["workdir"])
    root = f"{workdir}/envs/{spec.name}"
    return Layout(root, spec.venv or f"{root}/venv", f"{workdir}/envs/wheelhouse",
                  f"{workdir}/bin/{SCRIPT}")


def proc_name(name: str) -> str:
    """The detached build's process name on the host."""
    return f"env-{name}"


@cache
def bundle() -> str:
    """envctl and its parts as one script (one write per call, as before the split): each
    module's source registered under its own name, then envctl's main."""
    source = files("llmops.ops.hostside")
    parts = {name: source.joinpath(f"{name}.py").read_text() for name in MODULES}
    return ("# envctl, bundled by llmops (ops/hostside/envctl*.py): do not edit\n"
            "import sys, types\n"
            f"PARTS = {parts!r}\n"
            "for name, text in PARTS.items():\n"
            "    module = types.ModuleType(name)\n"
            "    module.__file__ = __file__\n"
            "    sys.modules[name] = module\n"
            "    exec(compile(text, f'<{name}.py>', 'exec'), module.__dict__)\n"
            "sys.modules['envctl'].main()\n")


def install_script(t: Transport, where: Layout) -> None:
    t.write_text(where.script, bundle(), mode=0o644)


def call(t: Transport, where: Layout, op: str, request: dict[str, Any] | None = None, *,
         python: str | None = None, timeout: float = 600.0) -> dict[str, Any]:
    """One envctl operation; its reply, or EnvError with what it said."""
    install_script(t, where)
    argv = [python or t.python, where.script, op, json.dumps(request or {})]
    done = t.run(argv, timeout=timeout)
    try:
        reply = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise EnvError(f"envctl {op} on {t.host} failed (exit {done.returncode}): "
                       f"{tail or 'no output'}") from None
    if not reply.get("ok"):
        raise EnvError(f"envctl {op} on {t.host}: {reply.get('error')}")
    return reply


def at_host(spec: EnvSpec, hosts: HostPool) -> tuple[Transport, Layout]:
    t = hosts.transport(spec.host)
    return t, layout(spec, host_facts(hosts, spec.host))


def base(where: Layout) -> dict[str, str]:
    return {"root": where.root, "venv": where.venv}
