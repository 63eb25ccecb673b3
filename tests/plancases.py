"""What every kind's plan-case test does the same way: load the case files, compare the
planned steps with the case's `[[steps]]`, and check a refusal against `[expect_error]`.
Each kind's test keeps what is its own (presets, observed, the spec's defaults)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydantic
import pytest

from llmops.ops.kinds.base import SpecError, Step

CASES_DIR = Path(__file__).parent / "cases"
STEP_DATA_KEYS = ("proc", "port", "colour")
"""Step-data attributes a case may name at the top level of a step, as `proc = "x"`."""


def cases_of(kind: str) -> list[Path]:
    return sorted((CASES_DIR / kind).glob("*.toml"))


def load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def check_steps(
    steps: Sequence[Step],
    expected: list[dict[str, Any]],
    *,
    names: dict[str, str] | None = None,
    unordered_lists: bool = False,
) -> None:
    """The verbs in order, then what each expected step names: proc/port/colour, argv, env,
    detail_has and `data` (step data that must match). `names` stands words in argv ({x})
    and data strings for values known only at run time (a cfg hash)."""
    names = names or {}
    got = [(s.verb, getattr(s.data, "proc", None) or s.detail) for s in steps]
    assert [v for v, _ in got] == [e["verb"] for e in expected], f"steps: {got}"
    for step, exp in zip(steps, expected, strict=True):
        for key in STEP_DATA_KEYS:
            if key in exp:
                assert getattr(step.data, key, None) == exp[key], (key, step)
        if "argv" in exp:
            argv = [a.format(**names) for a in exp["argv"]] if names else exp["argv"]
            assert list(step.argv) == argv
        if "env" in exp:
            assert dict(getattr(step.data, "env", None) or {}) == exp["env"]
        if "detail_has" in exp:
            assert exp["detail_has"] in step.detail, step.detail
        for key, value in exp.get("data", {}).items():
            got_value = getattr(step.data, key, None)
            if isinstance(value, str):
                value = names.get(value, value)
            if isinstance(value, list) and unordered_lists:
                value, got_value = sorted(names.get(v, v) for v in value), sorted(got_value or ())
            assert got_value == value, (key, step)


def check_refusal(
    case: dict[str, Any], build: Callable[[], Any], admit: Callable[[Any], None]
) -> None:
    """`[expect_error] field, contains`: the spec is refused, by pydantic while it is built
    or by `admit` after; the field named and every part in the message. `[expect_ok]`: the
    spec passes `admit`."""
    try:
        spec = build()
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field, message = (str(err["loc"][0]) if err["loc"] else ""), str(err["msg"])
    else:
        assert spec is not None
        if "expect_ok" in case:
            admit(spec)
            return
        with pytest.raises(SpecError) as info:
            admit(spec)
        field, message = info.value.field, str(info.value)
    expect = case["expect_error"]
    assert field == expect["field"], message
    for part in expect.get("contains", []):
        assert part in message, message
