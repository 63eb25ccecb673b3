"""Alert rules and their hysteresis as pure functions over sample sequences (issue 12 item 5):
what each rule reads, a flapping value raising once, a clear needing good samples in a row
inside the margin, and alerts.toml refusing commands that carry credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops.ops.kinds.server.alertrules import (
    AlertConfig,
    Reading,
    RuleState,
    credentials_in,
    readings,
    restarts,
    step,
)
from llmops.ops.kinds.server.spec import ServerSpec

SPEC = ServerSpec(name="s", host="h", model="/m", port=8000, target_ttft_p95_ms=200,
                  target_output_tps=100, alert_kv_cache_pct=90, alert_gpu_memory_pct=97)


def run(verdicts: list[str | None], raise_after: int = 3, clear_after: int = 3
        ) -> list[str]:
    """The transitions a sequence of verdicts makes, in order."""
    state, moved = RuleState(), []
    for verdict in verdicts:
        state, transition = step(state, verdict, raise_after=raise_after,  # type: ignore[arg-type]
                                 clear_after=clear_after)
        if transition:
            moved.append(transition)
    return moved


def by_rule(found: list[Reading]) -> dict[str, Reading]:
    return {r.rule: r for r in found}


def test_raise_after_n_bad_samples_in_a_row_and_clear_after_m_good() -> None:
    assert run(["bad", "bad"]) == []
    assert run(["bad", "bad", "bad"]) == ["raised"]
    assert run(["bad"] * 10) == ["raised"]  # once per raise, not every poll
    assert run(["bad"] * 3 + ["good", "good"]) == ["raised"]
    assert run(["bad"] * 3 + ["good"] * 3) == ["raised", "cleared"]
    assert run(["bad"] * 3 + ["good"] * 3 + ["bad"] * 3) == ["raised", "cleared", "raised"]


def test_a_flapping_value_raises_once() -> None:
    flapping = ["bad", "good"] * 20
    assert run(flapping) == []  # never three bad in a row
    assert run(["bad"] * 3 + ["good", "bad"] * 20) == ["raised"]  # never three good in a row
    assert run(["bad", "bad", "neutral", "bad", "bad", "bad"]) == ["raised"]


def test_no_evidence_changes_nothing_and_neutral_does_not_break_a_good_run() -> None:
    assert run(["bad", None, "bad", None, "bad"]) == ["raised"]
    assert run(["bad"] * 3 + ["good", "neutral", "good", None, "good"]) == ["raised", "cleared"]


@given(st.lists(st.sampled_from(["bad", "good", "neutral", None]), max_size=60))
def test_transitions_alternate_and_start_with_a_raise(verdicts: list[str | None]) -> None:
    moved = run(verdicts)
    assert moved == ["raised", "cleared"] * (len(moved) // 2) + ["raised"] * (len(moved) % 2)


def test_clear_margin_keeps_a_value_near_the_threshold_from_clearing() -> None:
    ttft = Reading("ttft_p95", 195.0, 200.0, above=True)
    assert ttft.verdict(5.0) == "neutral"  # inside the target, not by 5%
    assert Reading("ttft_p95", 189.0, 200.0, above=True).verdict(5.0) == "good"
    assert Reading("ttft_p95", 201.0, 200.0, above=True).verdict(5.0) == "bad"
    floor = Reading("output_tps", 103.0, 100.0, above=False)
    assert floor.verdict(5.0) == "neutral"
    assert Reading("output_tps", 99.0, 100.0, above=False).verdict(5.0) == "bad"
    crash = Reading("crash", 1.0, 1.0, above=False, margin=False)
    assert crash.verdict(5.0) == "good"


def test_readings_of_a_sample() -> None:
    values = {"ttft_p95": 0.35, "generation_tps": 40.0, "running": 3.0, "waiting": 0.0,
              "kv_cache_pct": 95.0, "gpu_mem_used_bytes": 7.9e9}
    found = by_rule(readings(SPEC, True, values, gpu_total_bytes=8e9))
    assert found["ttft_p95"].value == pytest.approx(350.0)
    assert found["ttft_p95"].verdict() == "bad"
    assert found["output_tps"].verdict() == "bad"
    assert found["kv_cache"].verdict() == "bad"
    assert found["gpu_memory"].value == pytest.approx(98.75)
    assert found["gpu_memory"].verdict() == "bad"
    assert found["crash"].verdict() == "good"
    assert found["restart_loop"].verdict() == "good"
    assert "TTFT p95 350 ms over target 200 ms" in found["ttft_p95"].message("s")


def test_throughput_is_judged_only_under_load_and_ttft_only_with_requests() -> None:
    idle = by_rule(readings(SPEC, True, {"generation_tps": 0.0, "running": 0.0,
                                         "waiting": 0.0, "ttft_p95": None}))
    assert idle["output_tps"].verdict() is None
    assert idle["ttft_p95"].verdict() is None
    one_client = by_rule(readings(SPEC, True, {"generation_tps": 12.0, "running": 1.0}))
    assert one_client["output_tps"].verdict() is None
    queued = by_rule(readings(SPEC, True, {"generation_tps": 12.0, "running": 1.0,
                                           "waiting": 2.0}))
    assert queued["output_tps"].verdict() == "bad"
    no_gpu = by_rule(readings(SPEC, True, {"gpu_mem_used_bytes": 5.0}))
    assert no_gpu["gpu_memory"].verdict() is None


def test_crash_counts_only_when_the_process_exited() -> None:
    down = by_rule(readings(SPEC, False, {}, state="crashed (exit 1)"))
    assert down["crash"].verdict() == "bad"
    assert set(down) == {"crash", "restart_loop"}  # a server that does not answer has no TTFT
    for state in ("starting", "stopped", "unreachable", None):  # a restart, a host away
        assert by_rule(readings(SPEC, False, {}, state=state))["crash"].verdict() is None
    assert by_rule(readings(SPEC, True, {}, state="crashed (exit 1)"))["crash"].verdict() == (
        "good")


def test_restart_loop_counts_comebacks_within_the_window() -> None:
    ups = [(0.0, True), (10.0, False), (20.0, True), (30.0, False), (40.0, True),
           (50.0, False), (60.0, True)]
    assert restarts(ups, now=60.0, window_s=600) == 3
    assert restarts(ups, now=60.0, window_s=25) == 2
    assert restarts(ups, now=60.0, window_s=15) == 1
    config = AlertConfig(restart_loop_count=3)
    loop = by_rule(readings(SPEC, True, {}, ups=ups, now=60.0, config=config))["restart_loop"]
    assert loop.verdict() == "bad"
    assert "came back up 3 times" in loop.message("s")


@pytest.mark.parametrize("argv", [
    ["curl", "https://user:pw@hooks.example.com/x"],
    ["curl", "https://tok@hooks.example.com/x"],
    ["curl", "https://hooks.example.com/x?token=abc"],
    ["curl", "-H", "Authorization: Bearer sk-abcdefghijklmnopqrstuvwxyz"],
])
def test_a_command_with_credentials_is_refused(argv: list[str]) -> None:
    assert credentials_in(argv)
    with pytest.raises(ValidationError, match="command"):
        AlertConfig(command=argv)


def test_a_plain_command_or_an_environment_variable_is_accepted() -> None:
    config = AlertConfig(command=["curl", "-sS", "--data-binary", "@-",
                                  "https://hooks.example.com/alerts"])
    assert config.argv({}) == config.command
    by_env = AlertConfig(command_env="ALERT_HOOK")
    assert by_env.argv({"ALERT_HOOK": "curl -sS 'https://x.example/a b'"}) == [
        "curl", "-sS", "https://x.example/a b"]
    assert by_env.argv({}) == []
    with pytest.raises(ValidationError, match="not both"):
        AlertConfig(command=["true"], command_env="ALERT_HOOK")
    with pytest.raises(ValidationError, match="command_env"):
        AlertConfig(command_env="not a name")
