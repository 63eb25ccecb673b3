"""The run kind's pure parts, from data files: plan steps, admission, the memory estimate and
the status word.

A case is `tests/cases/run/<name>.toml`:
- plan cases: `[desired]` and/or `[current]` (RunSpec fields; host "local", base
  "/models/tiny" and dataset "~/llmops-data/training/rows.jsonl" unless given), `facts` (a
  preset name or a table merged over one), `[observed]` (RunObserved: `proc`, `screen`,
  `current`, `cfgs` by cfg, `dataset_sha256`...) where the words "desired" and "current" stand
  for that spec's cfg hash (as a `cfgs` key, as `current`, and as a process's `cwd`), and
  `[[steps]]` (verb, and where given detail_has, argv, env, and `data`: step data that must
  match, with "desired"/"current" again for cfgs).
- admit cases: `[desired]`, `[expect_error] field = ..., contains = [...]`; with
  `model_config` (the base's config.json) the memory estimate runs too.
- memory cases that fit: `model_config` and `[expect_fits]` (lora_params_m, total_gib within
  0.01, or `unknown = true`).
- status cases: `[observed]` and `expect_status` (the word `run list` shows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import cases_of, check_refusal, check_steps, load

from llmops.ops.kinds.base import Context
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.run import RunKind, RunSpec, plan_run
from llmops.ops.kinds.run.layout import cfg_dir
from llmops.ops.kinds.run.memory import memory_estimate, refuse_if_too_big
from llmops.ops.kinds.run.observed import RunObserved
from llmops.ops.kinds.run.summary import run_state
from llmops.rollback.kinds import admit_dependencies

CASES = cases_of("run")
BASE = {"host": "local", "base": "/models/tiny", "dataset": "~/llmops-data/training/rows.jsonl"}


def gpu(n: int, gib: int = 80) -> list[dict[str, Any]]:
    return [{"index": i, "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": gib * 2**30,
             "memory_used_bytes": 0, "utilization_percent": 0} for i in range(n)]


PRESETS: dict[str, dict[str, Any]] = {
    "cpu2": {"python": "/usr/bin/python3", "workdir": "/home/op/.llmops", "cpu_count": 2,
             "ram_total_bytes": 24 * 2**30, "gpus": []},
    "gpu4": {"python": "/opt/venv/bin/python", "workdir": "/home/op/.llmops", "cpu_count": 32,
             "ram_total_bytes": 512 * 2**30, "gpus": gpu(4)},
    "gpu_small": {"python": "/opt/venv/bin/python", "workdir": "/home/op/.llmops",
                  "cpu_count": 16, "ram_total_bytes": 128 * 2**30,
                  "gpus": [*gpu(1), {**gpu(2, 24)[1]}]},
}


def facts_of(case: dict[str, Any]) -> dict[str, Any]:
    raw = case.get("facts", "cpu2")
    if isinstance(raw, str):
        return dict(PRESETS[raw])
    raw = dict(raw)
    return {**PRESETS[raw.pop("preset", "cpu2")], **raw}


def spec_of(case: dict[str, Any], key: str) -> RunSpec | None:
    data = case.get(key)
    return RunSpec(**{"name": "demo", **BASE, **data}) if data is not None else None


def resolver(case: dict[str, Any], facts: dict[str, Any]) -> dict[str, str]:
    """"desired" / "current" -> that spec's cfg hash."""
    names = {}
    for key in ("desired", "current"):
        spec = spec_of(case, key)
        if spec is not None:
            names[key] = spec.cfg_hash()
    return names


def observed_of(case: dict[str, Any], facts: dict[str, Any]) -> RunObserved:
    names = resolver(case, facts)
    observed = dict(case.get("observed", {}))
    observed["cfgs"] = {names.get(k, k): v for k, v in observed.get("cfgs", {}).items()}
    if "current" in observed:
        observed["current"] = names.get(observed["current"], observed["current"])
    for proc in ("proc", "screen"):
        cwd = observed.get(proc, {}).get("cwd")
        if cwd in names:
            observed[proc] = {**observed[proc], "cwd": cfg_dir(facts, "demo", names[cwd])}
    return RunObserved.model_validate({**observed, "facts": facts})


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case:
        check_admit_case(case)
    elif "expect_fits" in case:
        check_fits_case(case)
    elif "expect_status" in case:
        check_status_case(case)
    else:
        check_plan_case(case)


def check_plan_case(case: dict[str, Any]) -> None:
    facts = facts_of(case)
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    steps = plan_run(desired, current, observed_of(case, facts))
    check_steps(steps, case.get("steps", []), names=resolver(case, facts), unordered_lists=True)


def check_admit_case(case: dict[str, Any]) -> None:
    facts = facts_of(case)
    hosts = case.get("hosts", ["local"])
    desired: dict[tuple[str, str], Any] = {("host", h): HostSpec(name=h, local=True) for h in hosts}
    context = Context(desired, lambda kind, name: facts if kind == "host" else None)
    check_refusal(
        case,
        lambda: spec_of(case, "desired"),
        lambda spec: admit_and_estimate(spec, context, facts, case.get("model_config", {})),
    )


def admit_and_estimate(spec: RunSpec, context: Context, facts: dict[str, Any],
                       config: dict[str, Any]) -> None:
    """What admit and then preflight's memory estimate refuse, without a host."""
    admit_dependencies(RunKind(), ("run", spec.name), spec, context)
    RunKind().admit(spec, context)
    refuse_if_too_big(spec, facts, config)


def check_fits_case(case: dict[str, Any]) -> None:
    expect, facts = case["expect_fits"], facts_of(case)
    spec = spec_of(case, "desired")
    assert spec is not None
    RunKind().admit(spec, Context({}, lambda kind, name: facts))
    refuse_if_too_big(spec, facts, case["model_config"])
    est = memory_estimate(spec, facts, case["model_config"])
    if expect.get("unknown"):
        assert est is None
        return
    assert est is not None and est.fits, est and est.explain()
    if "lora_params_m" in expect:
        assert est.lora_params / 1e6 == pytest.approx(expect["lora_params_m"], abs=0.01)
    if "total_gib" in expect:
        assert est.total_bytes / 2**30 == pytest.approx(expect["total_gib"], abs=0.01)


def check_status_case(case: dict[str, Any]) -> None:
    facts = facts_of(case)
    spec = spec_of(case, "desired")
    assert spec is not None
    assert run_state(spec, observed_of(case, facts)) == case["expect_status"]


def test_cfg_hash_ignores_name_state_and_host() -> None:
    a = RunSpec(name="a", **BASE)
    b = RunSpec(name="b", **{**BASE, "host": "other"}, state="stopped")
    assert a.cfg_hash() == b.cfg_hash()
    assert len(a.cfg_hash()) == 12
    assert RunSpec(name="a", **BASE, lr=1e-3).cfg_hash() != a.cfg_hash()


def test_every_case_is_read() -> None:
    assert len(CASES) >= 20


def test_a_pinned_base_reaches_the_trainer_config_and_the_cfg() -> None:
    """`org/name:TAG` and base + revision are one spec; the trainer's config and the dataset
    inspection name the revision; it shapes the training (its own cfg folder), and a spec
    without one keeps its cfg hash (no retrain of existing runs)."""
    from llmops.ops.kinds.run.layout import inspect_request, trainer_config

    pinned = RunSpec(name="demo", **{**BASE, "base": "org/model:1.2"})
    assert (pinned.base, pinned.revision, pinned.model_id()) == ("org/model", "1.2",
                                                                  "org/model:1.2")
    assert pinned == RunSpec(name="demo", **{**BASE, "base": "org/model", "revision": "1.2"})
    plain = RunSpec(name="demo", **{**BASE, "base": "org/model"})
    assert pinned.cfg_hash() != plain.cfg_hash()
    assert plain.cfg_hash() == RunSpec(name="demo", **{**BASE, "base": "org/model",
                                                       "revision": None}).cfg_hash()
    config = trainer_config(pinned, PRESETS["cpu2"])
    assert (config["base"], config["revision"]) == ("org/model", "1.2")
    assert "revision" not in trainer_config(plain, PRESETS["cpu2"])
    assert inspect_request(pinned, pinned.dataset, [])["revision"] == "1.2"
