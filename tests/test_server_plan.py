"""The server kind's pure parts, from data files: plan steps with argv/env, and admission.

A case is `tests/cases/server/<name>.toml`:
- plan cases: `[desired]` and/or `[current]`, `facts` (a preset name or a table, merged over
  the preset), `[observed]` (procs by name; `hash = "desired" | "current" | "other"`), and
  `[[steps]]` (verb, and where given proc, detail_has, argv, env, port, colour, and `data`: a
  table of step data that must match).
- admit cases: `[desired]`, `[expect_error] field = ..., contains = [...]`, optional
  `hosts = [...]` (hosts the lab has, default ["local", "gpubox"]) and `[[others]]` servers.
  With `model_config` (the model's config.json) the preflight's memory estimate runs too.
- memory cases that fit: `model_config` and `[expect_fits]` (params_b, per_device_gib within
  0.01, or `unknown = true` when the config says too little to estimate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import cases_of, check_refusal, check_steps, load

from llmops.ops.kinds.base import Context
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerKind, ServerSpec, plan_server
from llmops.ops.kinds.server.launch import launch_hash
from llmops.ops.kinds.server.memory import memory_estimate, refuse_if_too_big
from llmops.ops.kinds.server.observed import ServerObserved
from llmops.rollback.kinds import admit_dependencies

CASES = cases_of("server")

PRESETS: dict[str, dict[str, Any]] = {
    "cpu2": {"python": "/usr/bin/python3", "workdir": "/home/op/.llmops", "cpu_count": 2,
             "ram_total_bytes": 24 * 2**30, "gpus": [], "packages": {"vllm": "0.32.0"}},
    "cpu16": {"python": "/usr/bin/python3", "workdir": "/home/op/.llmops", "cpu_count": 16,
              "ram_total_bytes": 128 * 2**30, "gpus": [], "packages": {"vllm": "0.32.0"}},
    "gpu4": {"python": "/opt/venv/bin/python", "workdir": "/home/op/.llmops", "cpu_count": 32,
             "ram_total_bytes": 512 * 2**30, "packages": {"vllm": "0.32.0"},
             "gpus": [{"index": i, "name": "NVIDIA H100 80GB HBM3",
                       "memory_total_bytes": 80 * 2**30, "memory_used_bytes": 0,
                       "utilization_percent": 0} for i in range(4)]},
    "novllm": {"python": "/usr/bin/python3", "workdir": "/home/op/.llmops", "cpu_count": 2,
               "ram_total_bytes": 8 * 2**30, "gpus": [], "packages": {"vllm": None}},
}


def facts_of(case: dict[str, Any]) -> dict[str, Any]:
    raw = case.get("facts", "cpu2")
    if isinstance(raw, str):
        return dict(PRESETS[raw])
    return {**PRESETS[raw.pop("preset", "cpu2")], **raw}


def spec_of(case: dict[str, Any], key: str) -> ServerSpec | None:
    data = case.get(key)
    return ServerSpec(**{"name": "demo", **data}) if data is not None else None


def observed_of(case: dict[str, Any], desired: ServerSpec | None, current: ServerSpec | None,
                facts: dict[str, Any]) -> ServerObserved:
    observed = dict(case.get("observed", {}))
    hashes = {"desired": desired, "current": current}
    for proc in observed.get("procs", {}).values():
        ref = proc.get("hash")
        if ref in hashes:
            spec = hashes[ref]
            assert spec is not None, f"hash = {ref!r} but the case has no [{ref}]"
            proc["hash"] = launch_hash(spec, facts)
    return ServerObserved.model_validate({**observed, "facts": facts})


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case:
        check_admit_case(case)
    elif "expect_fits" in case:
        check_fits_case(case)
    else:
        check_plan_case(case)


def check_plan_case(case: dict[str, Any]) -> None:
    facts = facts_of(case)
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    steps = plan_server(desired, current, observed_of(case, desired, current, facts))
    check_steps(steps, case.get("steps", []))


def check_admit_case(case: dict[str, Any]) -> None:
    facts = facts_of(case)
    hosts = case.get("hosts", ["local", "gpubox"])
    desired: dict[tuple[str, str], Any] = {("host", h): HostSpec(name=h, local=True) for h in hosts}
    for other in case.get("others", []):
        desired[("server", other["name"])] = ServerSpec(**other)
    context = Context(desired, lambda kind, name: facts if kind == "host" else None)
    check_refusal(
        case,
        lambda: spec_of(case, "desired"),
        lambda spec: admit_and_estimate(spec, context, facts, case.get("model_config", {})),
    )


def admit_and_estimate(spec: ServerSpec, context: Context, facts: dict[str, Any],
                       config: dict[str, Any]) -> None:
    """What admit and then preflight's memory estimate refuse, without a host."""
    admit_dependencies(ServerKind(), ("server", spec.name), spec, context)
    ServerKind().admit(spec, context)
    refuse_if_too_big(spec, facts, config)


def check_fits_case(case: dict[str, Any]) -> None:
    expect, facts = case["expect_fits"], facts_of(case)
    spec = spec_of(case, "desired")
    assert spec is not None
    refuse_if_too_big(spec, facts, case["model_config"])
    est = memory_estimate(spec, facts, case["model_config"])
    if expect.get("unknown"):
        assert est is None
        return
    assert est is not None and est.fits
    if "params_b" in expect:
        assert est.params / 1e9 == pytest.approx(expect["params_b"], abs=0.01)
    if "per_device_gib" in expect:
        assert est.per_device_bytes / 2**30 == pytest.approx(expect["per_device_gib"], abs=0.01)


def test_every_case_is_read() -> None:
    assert len(CASES) >= 20
