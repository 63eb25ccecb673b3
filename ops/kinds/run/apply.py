"""What the run kind does on a host: preflight, observe, carry out plan steps.

Thin on purpose: every decision is in the pure plan (`plan.py`); this file runs it through
the transport, procs and the host-side scripts (`hostcalls.py`); the data's inspection and
screening are in `data.py`, following a fresh start in `follow.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds import weights
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.hoststate import has_gpus, host_facts
from llmops.ops.kinds.run import layout
from llmops.ops.kinds.run.data import (
    data_dirs,
    data_files,
    inspect,
    inspect_all,
    refused_data,
    screen,
)
from llmops.ops.kinds.run.follow import wait_progress
from llmops.ops.kinds.run.hostcalls import hostread, install_scripts
from llmops.ops.kinds.run.memory import refuse_if_too_big
from llmops.ops.kinds.run.observed import ProcObserved, RunObserved, RunStep
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.transport import Transport

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

STOP_GRACE = 120.0
"""Seconds a SIGTERMed trainer has to finish its step and save a checkpoint before the kill."""


# -- preflight and observe --------------------------------------------------------------------
def refuse_on_facts(spec: RunSpec, facts: dict[str, Any]) -> None:
    """Refusals the host's last probe decides: QLoRA without a CUDA GPU, GPU ids it lacks."""
    gpu = has_gpus(facts)
    if spec.qlora and not gpu:
        raise SpecError(
            "qlora",
            f"QLoRA loads the base in 4 bits with bitsandbytes, which needs a CUDA GPU; "
            f"{spec.host} has none",
            "set qlora = false (plain LoRA) or pick a host with an NVIDIA GPU",
        )
    if spec.gpus and not gpu:
        raise SpecError("gpus", f"{spec.host} has no GPU", "drop gpus: this host trains on CPU")
    if spec.gpus:
        ids = [int(g.get("index", i)) for i, g in enumerate(facts["gpus"])]
        missing = [g for g in spec.gpus if g not in ids]
        if missing:
            raise SpecError(
                "gpus",
                f"{spec.host} has no GPU {missing[0]} (it has {ids})",
                "pick GPU ids the host has",
            )


def preflight(spec: RunSpec, hosts: HostPool) -> None:
    """Read-only, before the action is written: the host can run it, the base is there (a
    path) or its cached config says it fits, and the data files pass inspection."""
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    refuse_on_facts(spec, facts)
    weights.require_model_folder(t, spec.base, host=spec.host, field="base")
    dirs = data_dirs(hosts, spec.host)
    for field, path in data_files(spec):
        answer = inspect(t, spec, path, dirs)
        if not answer.get("ok"):
            raise refused_data(field, answer, spec.host, dirs)
    refuse_if_too_big(spec, facts, weights.model_config(t, spec.base, spec.revision))


def _proc(info: procs.ProcInfo | None) -> ProcObserved:
    if info is None:
        return ProcObserved()
    return ProcObserved(
        running=info.running, state=info.state, exit_code=info.rc, pid=info.pid, cwd=info.cwd
    )


def observe(spec: RunSpec, hosts: HostPool, *, hash_data: bool = True) -> RunObserved:
    """The run's processes and cfg folders; the data files' sha256 when `hash_data` (the plan
    needs them to tell a stale screening; a status poll does not)."""
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    trainer, screen = layout.proc_names(spec)
    found = {p.name: p for p in procs.list_procs(t) if p.name in (trainer, screen)}
    scan = hostread(
        t,
        "scan",
        layout.run_dir(facts, spec.name),
        spec.dataset,
        spec.validation or "",
        "1" if hash_data else "0",
    )
    return RunObserved(
        facts=facts,
        proc=_proc(found.get(trainer)),
        screen=_proc(found.get(screen)),
        current=scan.get("current"),
        cfgs=scan.get("cfgs") or {},
        dataset_sha256=scan.get("dataset_sha256"),
        validation_sha256=scan.get("validation_sha256"),
        now=float(scan.get("now") or time.time()),
    )


# -- apply ------------------------------------------------------------------------------------
def payload(step: Step) -> RunStep:
    assert isinstance(step.data, RunStep), step
    return step.data


def _cfg(step: Step) -> str:
    cfg = payload(step).cfg
    assert cfg is not None, step
    return cfg


def _proc_of(step: Step) -> str:
    proc = payload(step).proc
    assert proc is not None, step
    return proc


def apply(step: Step, spec: RunSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    if step.verb == "inspect":
        return inspect_all(spec, t, data_dirs(hosts, spec.host), progress)
    if step.verb == "screen":
        dirs = data_dirs(hosts, spec.host)
        return screen(spec, t, facts, dirs, _proc_of(step), _cfg(step), progress)
    return HANDLERS[step.verb](step, spec, t, facts, progress) or {}


def _check_base(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> None:
    weights.require_model_folder(t, spec.base, host=spec.host, field="base")


def _fetch(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    found = weights.fetch_weights(t, spec.base, spec.revision, host=spec.host,
                                  progress=progress)
    refuse_if_too_big(spec, facts, dict(found.get("config") or {}))
    progress(f"weights of {spec.model_id()} ready at {found.get('path')}")
    return {"weights_path": found.get("path"), "weights_cached": found.get("cached")}


def _write_config(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    cfg = _cfg(step)
    folder = layout.cfg_dir(facts, spec.name, cfg)
    install_scripts(t, facts)
    t.write_text(f"{folder}/config.json", json.dumps(dict(payload(step).config), indent=1))
    _make_current(t, facts, spec, cfg)
    return {"cfg": cfg}


def _make_current(t: Transport, facts: dict[str, Any], spec: RunSpec, cfg: str) -> None:
    folder = layout.cfg_dir(facts, spec.name, cfg)
    t.write_text(f"{layout.run_dir(facts, spec.name)}/current", cfg + "\n", mode=0o644)
    t.run(["rm", "-f", f"{folder}/released"], timeout=30).check()


def _select(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    cfg = _cfg(step)
    _make_current(t, facts, spec, cfg)
    progress(f"cfg {cfg} is current")
    return {"cfg": cfg}


def _release(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """A marker in each cfg folder; nothing is deleted (a rollback may bring the run back)."""
    marker = json.dumps({"released_at": time.time(), "outputs": "kept"})
    for cfg in payload(step).cfgs:
        t.write_text(f"{layout.cfg_dir(facts, spec.name, cfg)}/released", marker, mode=0o644)
    progress(f"released {', '.join(payload(step).cfgs)}; outputs kept")
    return {"released": list(payload(step).cfgs)}


def _stop(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """SIGTERM: the trainer finishes its step, saves a checkpoint, writes `stopped`; killed
    when not gone within STOP_GRACE."""
    proc = _proc_of(step)
    info = procs.stop(t, proc, grace=STOP_GRACE)
    how = "gracefully" if info.stopped == "term" else info.stopped
    progress(f"{proc} stopped {how} in {info.seconds}s (exit {info.rc})")
    return {"stopped": proc, "how": info.stopped, "seconds": info.seconds}


def _start(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    data = payload(step)
    proc = _proc_of(step)
    install_scripts(t, facts)
    info = procs.start(t, proc, list(step.argv), env=dict(data.env), cwd=data.cwd)
    resume = f", resuming from checkpoint-{data.resume_from}" if data.resume_from else ""
    progress(f"{proc} started, pid {info.pid}{resume}")
    return {"proc": proc, "pid": info.pid, "cfg": data.cfg, "resume_from": data.resume_from}


def _wait(
    step: Step, spec: RunSpec, t: Transport, facts: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    folder = layout.cfg_dir(facts, spec.name, _cfg(step))
    return wait_progress(t, _proc_of(step), folder, progress)


HANDLERS: dict[str, Callable[..., Any]] = {
    "check-base": _check_base,
    "fetch-weights": _fetch,
    "write-config": _write_config,
    "select": _select,
    "release": _release,
    "stop": _stop,
    "start": _start,
    "wait-progress": _wait,
}
VERBS = (*HANDLERS, "inspect", "screen")


def logs(spec: RunSpec, hosts: HostPool, lines: int = 100) -> list[str]:
    return procs.tail(hosts.transport(spec.host), spec.proc_name(), lines)
