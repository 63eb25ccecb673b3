"""The adapter kind's pure parts, from data files: plan steps and admission.

A case is `tests/cases/adapter/<name>.toml`; `{A}` and `{B}` in any string stand for two
64-hex shas (versions A and B), and the adapter is named `chat` unless `name` says.
- plan cases: `[desired]` and/or `[current]` (adapter specs), `[observed]` (AdapterObserved;
  in `loaded`, `false` stands for a folder outside the store), `[[steps]]` (verb, and where
  given detail_has and `data`: step data that must match).
- admit cases: `[desired]`, optional `[server]` (server s1 on host local) and `[run]` (run r1
  on host local), and `[expect_error] field, contains = [...]` or `[expect_ok]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plancases import cases_of, check_refusal, check_steps
from plancases import load as load_toml

from llmops.ops.kinds.adapter import AdapterKind, AdapterSpec, plan_adapter
from llmops.ops.kinds.adapter.apply import check_rank
from llmops.ops.kinds.adapter.observed import AdapterObserved
from llmops.ops.kinds.adapter.summary import adapter_state
from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.kinds import admit_dependencies

CASES = cases_of("adapter")
SHAS = {"{A}": "a" * 64, "{B}": "b" * 64}


def shas(value: Any) -> Any:
    """`{A}` / `{B}` -> the two shas, anywhere in the case."""
    if isinstance(value, str):
        for key, sha in SHAS.items():
            value = value.replace(key, sha)
        return value
    if isinstance(value, dict):
        return {k: shas(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shas(v) for v in value]
    return value


def load(path: Path) -> dict[str, Any]:
    return dict(shas(load_toml(path)))


def spec_of(case: dict[str, Any], key: str) -> AdapterSpec | None:
    data = case.get(key)
    return AdapterSpec(**{"name": case.get("name", "chat"), **data}) if data is not None else None


def observed_of(case: dict[str, Any]) -> AdapterObserved:
    raw = dict(case.get("observed", {}))
    raw["loaded"] = {k: (v or None) for k, v in raw.get("loaded", {}).items()}
    return AdapterObserved.model_validate(raw)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case or "expect_ok" in case:
        check_admit_case(case)
    else:
        check_plan_case(case)


def check_plan_case(case: dict[str, Any]) -> None:
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    check_steps(plan_adapter(desired, current, observed_of(case)), case.get("steps", []))


def context_of(case: dict[str, Any]) -> Context:
    desired: dict[tuple[str, str], Any] = {("host", "local"): HostSpec(name="local", local=True)}
    if "server" in case:
        desired[("server", "s1")] = ServerSpec(
            name="s1", host="local", model="/models/tiny", **case["server"]
        )
    if "run" in case:
        desired[("run", "r1")] = RunSpec(
            name="r1", host="local", base="/models/tiny", dataset="/data/train.jsonl",
            **case["run"],
        )
    return Context(desired, lambda kind, name: None)


def admit(kind: AdapterKind, spec: AdapterSpec, context: Context) -> None:
    """What the engine checks before anything is written: dependencies, then the kind."""
    admit_dependencies(kind, ("adapter", spec.name), spec, context)
    kind.admit(spec, context)


def check_admit_case(case: dict[str, Any]) -> None:
    kind, context = AdapterKind(), context_of(case)
    check_refusal(case, lambda: spec_of(case, "desired"), lambda spec: admit(kind, spec, context))


def test_rank_read_from_a_path_is_checked_against_the_server() -> None:
    """Preflight reads `r` from the folder's adapter_config.json and refuses one too big."""
    spec = AdapterSpec(name="chat", server="s1", path="/data/a", sha256="a" * 64)
    server = ServerSpec(name="s1", host="local", model="/m", enable_lora=True,
                        runtime_lora=True, max_lora_rank=8)
    check_rank(spec, server, 8, "/data/a")
    with pytest.raises(SpecError, match=r"r = 16 \(/data/a\).*max_lora_rank 8") as info:
        check_rank(spec, server, 16, "/data/a")
    assert info.value.field == "server"
    unset = server.model_copy(update={"max_lora_rank": None})
    check_rank(spec, unset, 16, "/data/a")  # vLLM's default is 16
    with pytest.raises(SpecError, match="max_lora_rank 16"):
        check_rank(spec, unset, 32, "/data/a")


@pytest.mark.parametrize(
    ("server", "observed", "word"),
    [
        ("s1", {"store_sha": "a" * 64, "loaded": {"chat": "a" * 64}}, "deployed"),
        ("s1", {"store_sha": "a" * 64, "loaded": {"chat": "b" * 64}}, "stale"),
        ("s1", {"store_sha": "a" * 64, "server_answers": True}, "unloaded"),
        ("s1", {"store_sha": "a" * 64, "server_answers": False}, "unloaded (server down)"),
        ("s1", {"server_answers": True}, "absent"),
        (None, {"store_sha": "a" * 64}, "stored"),
        (None, {}, "absent"),
    ],
)
def test_state_word(server: str | None, observed: dict[str, Any], word: str) -> None:
    spec = AdapterSpec(name="chat", server=server, path="/data/a", host="local",
                       sha256="a" * 64)
    assert adapter_state(spec, AdapterObserved.model_validate(observed)) == word


def test_every_case_is_read() -> None:
    assert len(CASES) >= 25
