"""The run kind's pure plan: (desired, current, observed facts) -> steps.

A run's outputs are kept per training config (cfg): a change of hyper-parameters is a new
cfg folder, and its rollback finds the old folder with its checkpoints, or its final
adapter, still there. So the plan asks of the desired cfg: done already (nothing retrains),
training already, or to be prepared and started (resuming from its newest checkpoint).
Tested from data files (`tests/cases/run/*.toml`)."""

from __future__ import annotations

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.run.layout import (
    cfg_dir,
    screen_proc,
    trainer_argv,
    trainer_config,
    trainer_env,
)
from llmops.ops.kinds.run.observed import CfgObserved, RunObserved, RunStep
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.weights import is_path_model


def plan_run(
    desired: RunSpec | None, current: RunSpec | None, observed: RunObserved
) -> list[Step]:
    """Steps from what the host has (observed) to what is desired; None desired = release."""
    if desired is None:
        return _plan_release(current, observed) if current is not None else []
    if desired.state == "stopped":
        return _plan_stopped(desired, observed)
    return _plan_running(desired, observed)


def _plan_running(spec: RunSpec, observed: RunObserved) -> list[Step]:
    cfg = spec.cfg_hash()
    found = observed.cfg(cfg)
    running = observed.running_cfg
    if running == cfg:
        return _select(spec, observed)
    stops = [_stop(spec, f"it trains cfg {running}; cfg {cfg} is wanted")] if running else []
    if found.done:
        return [*stops, *_select(spec, observed, f"cfg {cfg} is done already: nothing retrains")]
    return [*_prepare(spec, observed), *stops, *_start(spec, observed)]


def _plan_stopped(spec: RunSpec, observed: RunObserved) -> list[Step]:
    """Stopped: nothing trains, and the cfg is ready for a resume (prepared, so the checklist's
    dry run has its config and screened data)."""
    cfg = spec.cfg_hash()
    found = observed.cfg(cfg)
    steps = [_stop(spec, "state = stopped")] if observed.proc.running else []
    if observed.screen.running:
        steps.append(_stop_screen(spec, "state = stopped"))
    if found.done or (found.config and _screened(spec, found, observed)):
        return [*steps, *_select(spec, observed)]
    return [*steps, *_prepare(spec, observed)]


def _plan_release(spec: RunSpec, observed: RunObserved) -> list[Step]:
    """Removed: stop what runs, mark every cfg folder released; never delete outputs."""
    steps = [_stop(spec, "run removed")] if observed.proc.running else []
    if observed.screen.running:
        steps.append(_stop_screen(spec, "run removed"))
    kept = tuple(sorted(c for c, found in observed.cfgs.items() if not found.released))
    if kept:
        steps.append(
            Step(
                "release",
                f"mark {len(kept)} cfg folder(s) of {spec.name} released (outputs kept)",
                (),
                RunStep(cfgs=kept),
            )
        )
    return steps


def _screened(spec: RunSpec, found: CfgObserved, observed: RunObserved) -> bool:
    """Screening of this cfg is done and its report is of the data files as they are now."""
    if not found.screened or observed.dataset_sha256 is None:
        return False
    if found.report_dataset_sha256 != observed.dataset_sha256:
        return False
    return spec.validation is None or found.report_validation_sha256 == observed.validation_sha256


def _prepare(spec: RunSpec, observed: RunObserved) -> list[Step]:
    """Read-only checks first (base, data), then screening and the config: nothing that runs
    is stopped before these pass, as servers fetch weights before they stop."""
    cfg = spec.cfg_hash()
    facts = observed.facts
    found = observed.cfg(cfg)
    steps = [_base_step(spec), Step("inspect", _inspect_detail(spec), (), RunStep(cfg=cfg))]
    screening = (observed.screen.cwd or "").rstrip("/").rsplit("/", 1)[-1]
    if observed.screen.running and screening != cfg:
        steps.append(_stop_screen(spec, f"it screens for cfg {screening}"))
    if not _screened(spec, found, observed):
        why = "stale: the data changed" if found.screened else "before any training"
        steps.append(
            Step(
                "screen",
                f"screen {spec.dataset} into cfg {cfg} ({why})",
                (),
                RunStep(cfg=cfg, proc=screen_proc(spec)),
            )
        )
    steps.append(
        Step(
            "write-config",
            f"write cfg {cfg}'s config.json and make it current",
            (),
            RunStep(cfg=cfg, config=trainer_config(spec, facts)),
        )
    )
    return steps


def _base_step(spec: RunSpec) -> Step:
    if is_path_model(spec.base):
        return Step("check-base", f"{spec.base} exists on {spec.host}", (), RunStep())
    return Step("fetch-weights",
                f"weights of {spec.model_id()} into the HF cache of {spec.host}", (), RunStep())


def _inspect_detail(spec: RunSpec) -> str:
    files = spec.dataset + (f" and {spec.validation}" if spec.validation else "")
    return f"{files}: inside the data dirs, readable, fields present, rows and tokens"


def _start(spec: RunSpec, observed: RunObserved) -> list[Step]:
    cfg = spec.cfg_hash()
    facts = observed.facts
    found = observed.cfg(cfg)
    proc = spec.proc_name()
    resume = found.checkpoint
    why = f"resume from checkpoint-{resume}" if resume else "from step 0"
    if resume and found.last_event not in ("stopped", None):
        why += ", it was interrupted"
    data = RunStep(
        cfg=cfg,
        proc=proc,
        env=trainer_env(spec, facts),
        cwd=cfg_dir(facts, spec.name, cfg),
        resume_from=resume,
    )
    return [
        Step("start", f"start {proc} on cfg {cfg} ({why})", tuple(trainer_argv(spec, facts)), data),
        Step(
            "wait-progress",
            f"wait for {proc}'s start line and first log",
            (),
            RunStep(cfg=cfg, proc=proc),
        ),
    ]


def _select(spec: RunSpec, observed: RunObserved, why: str = "") -> list[Step]:
    """Point `current` at the cfg (and lift its released marker) when it is not so already."""
    cfg = spec.cfg_hash()
    if observed.current == cfg and not observed.cfg(cfg).released:
        return []
    detail = f"make cfg {cfg} current" + (f" ({why})" if why else "")
    return [Step("select", detail, (), RunStep(cfg=cfg))]


def _stop(spec: RunSpec, why: str) -> Step:
    proc = spec.proc_name()
    return Step(
        "stop",
        f"stop {proc} ({why}): SIGTERM, it saves a checkpoint; killed if not gone in time",
        (),
        RunStep(proc=proc),
    )


def _stop_screen(spec: RunSpec, why: str) -> Step:
    proc = screen_proc(spec)
    return Step("stop", f"stop {proc} ({why})", (), RunStep(proc=proc))
