"""The run kind's checklist, run after every action, revert and rollback: is the fine-tuning
setup operational? The data readable, the base loading and a few trainer steps on it, and per
state: training and advancing, done with the adapter the result names, or nothing running.
Each check fails on a real fault (tests/test_run_kind.py shows one per check)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmops.ops.kinds.base import Check
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.run import layout
from llmops.ops.kinds.run.apply import observe
from llmops.ops.kinds.run.data import data_dirs, data_files, inspect
from llmops.ops.kinds.run.hostcalls import hostside_source, last_json
from llmops.ops.kinds.run.observed import RunObserved
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.transport import Transport

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

STALL_S = 900.0
"""A training run whose newest progress record is older than this is stuck, not slow: a log
comes every `logging_steps` steps and an eval or checkpoint on their schedule."""
DRY_RUN_STEPS = 2
DRY_RUN_TIMEOUT = 1800.0


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    began = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(name, ok, detail, round(time.monotonic() - began, 3))


def checklist(spec: RunSpec, hosts: HostPool) -> list[Check]:
    """Data readable, base loads + dry run, then by state: training, done (adapter sha) or
    no process."""
    t = hosts.transport(spec.host)
    facts = host_facts(hosts, spec.host)
    observed = observe(spec, hosts, hash_data=False)
    dirs = data_dirs(hosts, spec.host)
    cfg = spec.cfg_hash()
    found = observed.cfg(cfg)
    checks = [
        _timed("dataset readable", lambda: check_dataset(t, spec, dirs)),
        _timed("base loads + trainer dry-run", lambda: check_dry_run(t, spec, facts, observed)),
    ]
    if found.done:
        checks.append(_timed("adapter sha", lambda: check_adapter(t, spec, facts, observed)))
    elif spec.state == "running":
        checks.append(_timed("training", lambda: check_training(spec, observed)))
    if spec.state == "stopped":
        checks.append(_timed("no process", lambda: check_no_process(spec, observed)))
    return checks


def check_dataset(t: Transport, spec: RunSpec, dirs: list[str]) -> tuple[bool, str]:
    """Inspected on the host as preflight does: inside the data dirs, readable, fields."""
    details = []
    for field, path in data_files(spec):
        answer = inspect(t, spec, path, dirs, tokens=False)
        if not answer.get("ok"):
            return False, f"{field}: {answer.get('rule')}: {answer.get('message') or answer}"
        details.append(f"{field}: {answer.get('rows')} rows at {answer.get('realpath')}")
    return True, "; ".join(details)


def check_dry_run(
    t: Transport, spec: RunSpec, facts: dict[str, object], observed: RunObserved
) -> tuple[bool, str]:
    """The trainer loads the base and takes a few steps on the cfg's config, saving nothing.
    While the trainer itself trains this cfg and has logged steps, those are the proof (it
    loaded this base and trains on this data): a second copy beside it would take the GPU's
    memory a big run needs, and on a small CPU host slow the run it checks
    (benchmarks/finetune.py measured +31-57% tokens/s lost to it)."""
    cfg = spec.cfg_hash()
    found = observed.cfg(cfg)
    if observed.running_cfg == cfg and found.last_event in ("log", "eval", "checkpoint"):
        return True, f"the trainer itself trains cfg {cfg}: step {found.step} (no second copy)"
    argv = layout.dry_run_argv(spec, facts, DRY_RUN_STEPS)
    done = t.run(argv, timeout=DRY_RUN_TIMEOUT, env=layout.trainer_env(spec, facts))
    answer = last_json(done.stdout) or {}
    if done.returncode != 0 or not answer.get("ok"):
        error = answer.get("error") or " | ".join(done.stderr.strip().splitlines()[-2:])
        return False, f"dry run of cfg {cfg} failed (exit {done.returncode}): {error}"[:400]
    return True, (
        f"{answer.get('steps')} steps, loss {_num(answer.get('loss'))}, "
        f"{answer.get('base_params')} base parameters, {answer.get('seconds')}s"
    )


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def check_adapter(
    t: Transport, spec: RunSpec, facts: dict[str, object], observed: RunObserved
) -> tuple[bool, str]:
    """result.json's sha256 equals the sha of adapter/ recomputed on the host now."""
    cfg = spec.cfg_hash()
    want = observed.cfg(cfg).adapter_sha256
    folder = f"{layout.cfg_dir(dict(facts), spec.name, cfg)}/adapter"
    done = t.python_script(hostside_source("adapter_tools.py"), ["sha", folder], timeout=600)
    answer = last_json(done.stdout) or {}
    got = answer.get("sha256")
    if not got:
        return False, f"no sha for {folder}: {answer.get('error') or done.stderr[-200:]}"
    return got == want, f"adapter/ {str(got)[:12]} vs result.json {str(want)[:12]}"


def check_training(spec: RunSpec, observed: RunObserved) -> tuple[bool, str]:
    """Running this cfg, and its newest progress record is recent (host clock), or done."""
    cfg = spec.cfg_hash()
    found = observed.cfg(cfg)
    if found.done:
        return True, f"cfg {cfg} is done"
    if observed.running_cfg != cfg:
        state = observed.proc.state or "never started"
        rc = f" (exit {observed.proc.exit_code})" if observed.proc.exit_code is not None else ""
        return False, f"{spec.proc_name()} is not training cfg {cfg}: {state}{rc}"
    if found.last_at is None:
        return False, f"{spec.proc_name()} runs but wrote no progress"
    age = observed.now - found.last_at
    return age <= STALL_S, (
        f"step {found.step}/{found.max_steps}, last record {age:.0f}s ago (<= {STALL_S:.0f}s)"
    )


def check_no_process(spec: RunSpec, observed: RunObserved) -> tuple[bool, str]:
    left = [name for name, p in zip(layout.proc_names(spec), (observed.proc, observed.screen),
                                    strict=True) if p.running]
    return not left, ", ".join(left) + " running" if left else "none running"


def checklist_absent(spec: RunSpec, hosts: HostPool) -> list[Check]:
    """Removed: nothing of the run runs, and every cfg folder is still there, released, with
    its adapter where it finished (outputs are never deleted)."""
    observed = observe(spec, hosts, hash_data=False)
    return [
        _timed("no process", lambda: check_no_process(spec, observed)),
        _timed("outputs kept", lambda: check_kept(observed)),
    ]


def check_kept(observed: RunObserved) -> tuple[bool, str]:
    if not observed.cfgs:
        return True, "nothing was written on the host"
    unreleased = [c for c, f in observed.cfgs.items() if not f.released]
    lost = [c for c, f in observed.cfgs.items() if f.done and not f.adapter]
    problems = [f"not released: {', '.join(unreleased)}"] if unreleased else []
    problems += [f"adapter gone: {', '.join(lost)}"] if lost else []
    kept = ", ".join(f"{c}{' (done)' if f.done else ''}" for c, f in observed.cfgs.items())
    return not problems, "; ".join(problems) or f"kept and released: {kept}"
