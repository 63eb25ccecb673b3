"""The bench's figures, verdicts, arrivals and cost from known inputs (pure: no server)."""

from __future__ import annotations

import statistics

import pytest

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server.bench import BenchClient
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.benchstats import Outcome, figures, pct, verdict_word, verdicts
from llmops.ops.kinds.server.cost import gpu_share, hourly, token_costs
from llmops.rollback.benches import pair
from llmops.rollback.summaries import bench_side_by_side

# Two requests as vLLM's client would record them: 4 and 3 output tokens (TPOT excludes the
# first), ITL one per later chunk; a third failed.
KNOWN = [
    Outcome(ok=True, ttft=0.100, latency=0.400, itl=[0.1, 0.1, 0.1], prompt_tokens=10,
            output_tokens=4),
    Outcome(ok=True, ttft=0.300, latency=0.500, itl=[0.1, 0.1], prompt_tokens=6,
            output_tokens=3),
    Outcome(ok=False, error="HTTP 500"),
]


def test_figures_are_vllms_definitions() -> None:
    f = figures(KNOWN, 2.0, {"ttft": 200.0})
    assert (f["completed"], f["failed"]) == (2, 1)
    assert (f["total_input_tokens"], f["total_output_tokens"]) == (16, 7)
    assert f["request_throughput"] == 1.0
    assert f["output_throughput"] == 3.5 and f["input_throughput"] == 8.0
    assert f["total_token_throughput"] == 11.5
    assert f["request_goodput"] == 0.5  # only the first request's TTFT is within 200 ms
    assert f["ttft_ms"] == {"mean": 200.0, "median": 200.0, "p95": 290.0, "p99": 298.0}
    # TPOT = (latency - ttft) / (tokens - 1): 100 ms both; ITL: five gaps of 100 ms
    assert f["tpot_ms"]["mean"] == pytest.approx(100.0)
    assert f["itl_ms"]["median"] == pytest.approx(100.0)
    assert f["e2el_ms"]["mean"] == pytest.approx(450.0)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert pct(values, 50) == 3.0
    assert pct(values, 95) == pytest.approx(8.8)  # numpy.percentile(values, 95)
    assert pct([], 95) == 0.0


def test_verdicts_pass_and_fail_on_a_known_result() -> None:
    f = figures(KNOWN, 2.0, {})
    found = verdicts(f, ttft_p95_ms=300.0, output_tps=3.0)
    assert [v.ok for v in found] == [True, True] and verdict_word(found) == "pass"
    found = verdicts(f, ttft_p95_ms=290.0, output_tps=3.5)  # p95 290 is not < 290, nor 3.5 > 3.5
    assert [v.ok for v in found] == [False, False] and verdict_word(found) == "fail"
    assert "first-token p95 290.0 ms < 290 ms" in found[0].words
    nothing = figures([Outcome(ok=False)], 1.0, {})
    assert verdict_word(verdicts(nothing, 1e9, 0.0)) == "fail"  # no figure is no pass


def test_poisson_arrivals_keep_the_rate() -> None:
    client = BenchClient("http://x", "m", BenchParams(requests=200, rate=20.0, seed=3))
    at = client.delays(200)
    assert at == sorted(at) and at[-1] == pytest.approx(10.0)  # n / rate, as vLLM scales it
    gaps = [b - a for a, b in zip([0.0, *at], at, strict=False)]
    assert 0.5 < statistics.pstdev(gaps) / statistics.mean(gaps) < 1.5  # exponential: cv ~1
    smooth = BenchClient("http://x", "m", BenchParams(requests=200, rate=20.0, burstiness=50.0))
    sgaps = [b - a for a, b in zip([0.0, *smooth.delays(200)], smooth.delays(200), strict=False)]
    assert statistics.pstdev(sgaps) / statistics.mean(sgaps) < 0.3
    assert BenchClient("http://x", "m", BenchParams()).delays(3) == [0.0, 0.0, 0.0]


def test_cost_per_million_from_throughput_and_share() -> None:
    f = figures(KNOWN, 2.0, {})
    host = HostSpec(name="g", address="10.0.0.1", cost_per_hour=8.0, power_watts=1000.0,
                    price_per_kwh=0.5)
    share = gpu_share(2, 8)
    assert share == 0.25
    cost = token_costs(hourly(host, share, None), f)
    assert cost is not None
    assert cost["per_hour"] == pytest.approx(8.0 * 0.25 + 1.0 * 0.25 * 0.5)
    assert cost["per_1m_output"] == pytest.approx(cost["per_hour"] / (3.5 * 3600) * 1e6,
                                                  rel=1e-5)
    measured = hourly(host, share, measured_watts=600.0)
    assert measured is not None and measured["watts_from"] == "nvml"
    assert measured["energy_per_hour"] == pytest.approx(0.3)
    assert hourly(HostSpec(name="c", local=True), 1.0, None) is None
    assert gpu_share(0, 0) == 1.0  # a CPU host: the whole box


def test_bad_parameters_name_the_field() -> None:
    for bad, field in (({"rate": -1}, "rate"), ({"requests": 0}, "requests"),
                       ({"concurrency": 0}, "concurrency"), ({"burstiness": 0}, "burstiness")):
        with pytest.raises(ValueError, match=field):
            BenchParams.model_validate(bad)
    assert BenchParams().requests == 32 and BenchParams(duration_s=5).requests is None


def test_pair_and_side_by_side() -> None:
    rows = [{"spec_commit": c, "verdict": v, "figures": figures(KNOWN, s, {}),
             "verdicts": [x.__dict__ for x in verdicts(figures(KNOWN, s, {}), 300.0, 1.0)],
             "cost": None} for c, v, s in (("b", "pass", 1.0), ("b", "pass", 2.0),
                                           ("a", "fail", 4.0))]
    before, after = pair(rows)
    assert after is rows[0] and before is rows[2]  # the newest of another spec version
    lines = {label: (a, b, change) for label, a, b, change in bench_side_by_side(before, after)}
    assert lines["output tok/s"] == ("1.8", "7.0", "+300.0%")
    assert lines["verdict"][:2] == ("fail", "pass")
    assert pair(rows[:2]) == (rows[1], rows[0]) and pair([]) == (None, None)
