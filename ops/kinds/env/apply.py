"""What the env kind does on hosts: observe, preflight, carry out the plan's steps.

Thin on purpose: the decisions are in `plan.py`; this runs them through envctl on the host.
A build runs detached (procctl) so it survives the console; apply follows its log as
progress lines (pip's own), and a console that died mid-build finds it at its next reconcile
and follows it again instead of starting another."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.env import wheelhouse
from llmops.ops.kinds.env.hostcalls import (
    EnvError,
    Layout,
    at_host,
    base,
    call,
    install_script,
    proc_name,
)
from llmops.ops.kinds.env.observed import EnvObserved, EnvStep
from llmops.ops.kinds.env.plan import plan_env
from llmops.ops.kinds.env.recorded import recorded_manifest
from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

FOLLOW_PAUSE = 0.5
"""Between two looks at a running build (each is two host-side pythons: pip needs the CPU)."""
BUILD_TIMEOUT = 6 * 3600.0
"""A vLLM install on a slow link takes a while; the build goes on past this, apply gives up."""


def observe(spec: EnvSpec, hosts: HostPool, *, freeze: bool = False) -> EnvObserved:
    t, where = at_host(spec, hosts)
    found = call(t, where, "inspect", {**base(where), "freeze": freeze}, timeout=120)
    observed = EnvObserved(
        host=spec.host, root=found["root"], venv=found["venv"], link=found.get("link"),
        foreign=bool(found.get("foreign")), kept=list(found.get("kept", [])),
        incomplete=list(found.get("incomplete", [])),
        manifests=dict(found.get("manifests", {})), freeze=found.get("freeze"),
        manifest_lines=found.get("manifest_lines"), torch_cuda=found.get("torch_cuda"))
    info = procs.status(t, proc_name(spec.name))
    if info.running:
        observed.building = _job_set(info.argv)
    target = spec.set_sha()
    if target not in observed.manifests:  # lost on the host (or never built): the journal's
        copy = recorded_manifest(hosts.journalled(f"env/{spec.name}"), target)
        observed.journal_note = copy.note
        if copy.sha:
            observed.journalled[target] = copy.sha
            observed.journalled_lines[copy.sha] = list(copy.lines)
            if observed.link == target and observed.manifest_lines is None and freeze:
                observed.manifest_lines = list(copy.lines)  # drift is still seen
    return observed


def _job_set(argv: list[str]) -> str | None:
    """The set a running build makes, from its job file's name (…/jobs/<set>.json)."""
    job = argv[-1] if argv else ""
    return job.rsplit("/", 1)[-1][:-5] if job.endswith(".json") else None


def preflight(spec: EnvSpec, hosts: HostPool) -> None:
    """Read-only, before anything is written: the venv path is free or ours."""
    observed = observe(spec, hosts)
    if observed.foreign:
        raise SpecError(
            "venv",
            f"{observed.venv} on {spec.host} exists and is not a venv llmops manages",
            "give another venv path, or move that one away (llmops never overwrites it)",
        )


def reconcile(spec: EnvSpec, hosts: HostPool, progress: Progress) -> list[str]:
    """The committed spec's plan against the host as it is, carried out (the kind's
    `restart`: a journalled operation, no commit); the steps' verbs."""
    steps = plan_env(spec, spec, observe(spec, hosts, freeze=True))
    if not steps:
        progress(f"nothing to do: env {spec.name} on {spec.host} is as the lab says")
    for step in steps:
        progress(f"{step.verb}: {step.detail}")
        apply(step, spec, hosts, progress)
    return [step.verb for step in steps]


def payload(step: Step) -> EnvStep:
    assert isinstance(step.data, EnvStep), step
    return step.data


def apply(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def _snapshot(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress
              ) -> dict[str, Any]:
    t, where = at_host(spec, hosts)
    reply = call(t, where, "snapshot", base(where))
    if reply.get("set") is None:
        return {}
    sha = str(reply["manifest"])
    progress(f"before-state: venv {reply['set']} = manifest {sha[:12]} "
             f"({len(reply['lines'])} packages)" + (" (drifted by hand)" if reply.get(
                 "drifted") else ""))
    return {"before_set": reply["set"], "before_manifest": sha,
            "before_freeze": reply["lines"], "drifted": bool(reply.get("drifted"))}


def _put_manifest(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress
                  ) -> dict[str, Any]:
    """The journal's copy of a manifest back into the host's manifests folder (envctl checks
    its sha256 again before writing)."""
    data = payload(step)
    t, where = at_host(spec, hosts)
    reply = call(t, where, "put-manifest", {"root": where.root, "set": data.set,
                                            "sha": data.manifest, "lines": list(data.lines)})
    progress(f"manifest {str(data.manifest)[:12]} ({len(data.lines)} packages) back on "
             f"{t.host} from the journal")
    return {"manifest_from_journal": reply["sha"], "set": data.set}


def _fetch(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    data = payload(step)
    t, where = at_host(spec, hosts)
    platform = call(t, where, "platform", python=spec.python)
    progress(f"{t.host}: python {platform['python_version']} {platform['abi']} "
             f"{platform['platforms'][0] if platform['platforms'] else ''}")
    began = time.monotonic()
    skipped: dict[str, Any] = {}
    if data.manifest:
        lines = call(t, where, "manifest", {"root": where.root, "sha": data.manifest})["lines"]
        wheels = wheelhouse.download(spec, platform, progress, manifest_lines=list(lines))
    elif data.cleanup:  # resolved first: the clean-up's packages are never downloaded
        resolved = wheelhouse.resolve(spec, platform, progress, list(data.pins))
        kept = wheelhouse.without(resolved, data.cleanup)
        left = sorted({line for line, _ in resolved} - {line for line, _ in kept})
        progress(f"resolved {len(resolved)} packages; not fetched (the clean-up): "
                 f"{', '.join(left) or 'none'}")
        wheels = wheelhouse.download(spec, platform, progress,
                                     manifest_lines=[ref for _, ref in kept])
        t.write_text(where.resolved(str(data.set)),
                     json.dumps([line for line, _ in resolved]), mode=0o644)
        skipped = {"resolved": len(resolved), "not_fetched": left}
    else:
        wheels = wheelhouse.download(spec, platform, progress, requirements=list(data.pins))
    downloaded = round(time.monotonic() - began, 3)
    pushed = wheelhouse.push(t, where, wheels, progress)
    return {**pushed, **skipped, "download_seconds": downloaded,
            "push_seconds": round(time.monotonic() - began - downloaded, 3)}


def _build(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Build (or restore) the set's venv in a detached process and follow it to its end."""
    data = payload(step)
    assert data.set
    t, where = at_host(spec, hosts)
    name = proc_name(spec.name)
    info = procs.status(t, name)
    _lines, offset = procs.read_log(t, name, 1 << 60)  # from the end: this run's lines only
    if info.running and _job_set(info.argv) == data.set:
        progress(f"following the build of venv {data.set} already running (pid {info.pid})")
    else:
        if info.running:
            progress(f"stopping the build of venv {_job_set(info.argv)} (another set now)")
            procs.stop(t, name)
        job = {"root": where.root, "set": data.set, "python": spec.python or t.python,
               "mode": spec.mode, "pins": list(data.pins), "manifest": data.manifest,
               "index_url": spec.index_url, "no_index": spec.no_index,
               "find_links": list(spec.find_links), "wheelhouse": where.wheelhouse,
               "repair": step.verb == "repair", "cleanup": list(data.cleanup),
               "resolved": where.resolved(data.set) if spec.mode == "wheelhouse"
               and data.cleanup and not data.manifest else None}
        install_script(t, where)
        t.write_text(where.job(data.set), json.dumps(job, indent=1), mode=0o600)
        t.run(["rm", "-f", where.result(data.set)], timeout=30)
        info = procs.start(t, name, [t.python, where.script, "build", where.job(data.set)])
        progress(f"build of venv {data.set} started on {t.host} (pid {info.pid})")
    return follow(t, where, name, data.set, progress, offset)


def follow(t: Transport, where: Layout, name: str, target: str, progress: Progress,
           offset: int) -> dict[str, Any]:
    """The build's log lines (from `offset`) as progress until it exits; its result, or
    EnvError with pip's message."""
    began = time.monotonic()
    while True:
        running = procs.status(t, name).running
        lines, offset = procs.read_log(t, name, offset)
        for line in lines:
            if not line.startswith("--- "):
                progress(line[:300])
        if not running:
            break
        if time.monotonic() - began > BUILD_TIMEOUT:
            raise EnvError(f"the build of venv {target} on {t.host} ran past "
                           f"{BUILD_TIMEOUT:.0f} s; it goes on (llmops env show)")
        time.sleep(FOLLOW_PAUSE)
    try:
        result = dict(json.loads(t.read_text(where.result(target))))
    except (TransportError, ValueError):
        tail = procs.tail(t, name, 5)
        raise EnvError(f"the build of venv {target} on {t.host} left no result: "
                       f"{' | '.join(tail)}") from None
    if not result.get("ok"):
        raise EnvError(f"install on {t.host} failed: {result.get('error')}")
    return {"set": target, "manifest": result["manifest"], "packages": len(result["lines"]),
            "build_seconds": result["seconds"], "restored": bool(result.get("restored")),
            "cleaned": list(result.get("cleaned") or []),
            "manifest_lines": list(result["lines"])}  # the journal's copy of the manifest


def _stop(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t, _where = at_host(spec, hosts)
    name = proc_name(spec.name)
    info = procs.status(t, name)
    if info.running and _job_set(info.argv) == payload(step).set:
        procs.stop(t, name)
        progress(f"stopped the build of venv {payload(step).set} (pid {info.pid})")
    return {"stopped_build": payload(step).set}


def _switch(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    data = payload(step)
    t, where = at_host(spec, hosts)
    reply = call(t, where, "switch", {**base(where), "set": data.set})
    progress(f"{where.venv} -> venv {data.set} (was {reply.get('from') or 'none'})")
    return {"switched_from": reply.get("from"), "switched_to": data.set,
            "switch_seconds": reply.get("seconds")}


def _prune(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t, where = at_host(spec, hosts)
    reply = call(t, where, "prune", {**base(where), "keep": list(payload(step).keep)})
    progress(f"deleted venvs {', '.join(reply['removed']) or 'none'}")
    return {"pruned": reply["removed"]}


def _unlink(step: Step, spec: EnvSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t, where = at_host(spec, hosts)
    reply = call(t, where, "remove", {**base(where), "venvs": payload(step).venvs})
    progress(f"{where.venv} removed" + (f"; venvs deleted: {', '.join(reply['removed'])}"
                                         if reply.get("removed") else ""))
    return {"unlinked": reply.get("unlinked"), "pruned": reply.get("removed", [])}


HANDLERS: dict[str, Callable[..., Any]] = {
    "snapshot": _snapshot,
    "manifest": _put_manifest,
    "fetch": _fetch,
    "build": _build,
    "restore": _build,
    "repair": _build,
    "stop": _stop,
    "switch": _switch,
    "prune": _prune,
    "unlink": _unlink,
}
