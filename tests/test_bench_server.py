"""`llmops server bench` against the session's shared CPU vLLM server: every figure, stored
per spec commit and shown (`benches`, `--compare`, `server list`, `status`); token counts are
the server's own (`/tokenize`); bad parameters and an unreachable server exit 2 and write
nothing; the checklist's target check fails on a real breach and passes otherwise."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
from labtools import llmops, llmops_json
from sharedserver import SharedServer, llmops_json_slow

from llmops.ops.kinds.server.bench import BenchClient
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.checks import check_targets
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.spec import ServerSpec

pytestmark = [pytest.mark.vllm]

SHORT = ("--requests", "6", "--concurrency", "3", "--input-len", "16", "--output-len", "8",
         "--warmup", "1")
FIGURES = ("completed", "failed", "duration_s", "total_input_tokens", "total_output_tokens",
           "request_throughput", "request_goodput", "input_throughput", "output_throughput",
           "total_token_throughput")
SPREAD = ("mean", "median", "p95", "p99")


def bench_count(lab: Path) -> int:
    with sqlite3.connect(lab / "lab.db") as db:
        try:
            return int(db.execute("select count(*) from benches").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # no table yet: nothing written


def test_short_bench_gives_every_figure_stored_and_shown(shared_server: SharedServer) -> None:
    lab, name = shared_server.lab, shared_server.name
    got = llmops_json(lab, "server", "bench", name, *SHORT, "--rate", "50")
    row = got["bench"]
    f = row["figures"]
    for key in FIGURES:
        assert f[key] is not None, key
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        assert set(f[metric]) == set(SPREAD), metric
        assert 0 < f[metric]["median"] <= f[metric]["p99"], (metric, f[metric])
    assert (f["completed"], f["failed"]) == (6, 0), row["errors"]
    assert f["total_output_tokens"] == 6 * 8 and f["total_input_tokens"] == 6 * 16
    assert [v["target"] for v in row["verdicts"]] == ["ttft_p95_ms", "output_tps"]
    assert row["verdict"] in ("pass", "fail") and row["id"] is not None
    assert row["spec_commit"] and len(row["spec_sha"]) == 64
    stored = llmops_json(lab, "server", "benches", name)
    assert stored[0]["id"] == row["id"] and stored[0]["figures"] == f
    listed = {r["name"]: r for r in llmops_json(lab, "server", "list")}
    assert listed[name]["last_verdict"] == row["verdict"]
    # a second bench, side by side with the first (same spec: the one before it)
    second = llmops_json(lab, "server", "bench", name, *SHORT, "--compare")
    assert second["before"]["id"] == row["id"] and second["bench"]["id"] > row["id"]
    shown = llmops(lab, "server", "benches", name, "--compare", env={"COLUMNS": "200"}).stdout
    for label in ("TTFT p95 ms", "output tok/s", "first-token p95 target", "verdict"):
        assert label in shown, shown
    status = llmops_json(lab, "status")["servers"]
    mine = next(s for s in status if s["name"] == name)
    assert mine["latency_p95_ms"] == second["bench"]["figures"]["ttft_ms"]["p95"]
    assert mine["throughput_tok_s"] == second["bench"]["figures"]["output_throughput"]
    assert set(mine["verdicts"]) == {"ttft_p95_ms", "output_tps"}
    for key in ("cost_per_1m_output", "cost_per_1m_input", "eval_accuracy", "targets", "state"):
        assert key in mine, key


def test_cost_beside_the_bench_from_the_hosts_price(shared_server: SharedServer,
                                                    ) -> None:
    """The host's price turns the bench's throughput into cost per 1M tokens; the price is
    taken back by a rollback of the host change, as the shared server's users expect."""
    lab = shared_server.lab
    spec = llmops_json(lab, "host", "show", "local")["spec"]
    changed = llmops_json(lab, "host", "add", "local", "--local", "--python", sys.executable,
                          "--workdir", spec["workdir"], "--cost-per-hour", "3.6")
    try:
        row = llmops_json(lab, "server", "bench", shared_server.name, *SHORT)["bench"]
        cost = row["cost"]
        tps = row["figures"]["output_throughput"]
        assert cost["per_hour"] == 3.6 and cost["share"] == 1.0  # a CPU host: all of it
        assert cost["per_1m_output"] == pytest.approx(3.6 / (tps * 3600) * 1e6, rel=1e-3)
        status = llmops_json(lab, "status")["servers"]
        assert next(s for s in status if s["name"] == shared_server.name)[
            "cost_per_1m_output"] == cost["per_1m_output"]
    finally:
        llmops(lab, "rollback", str(changed["action"]["id"]), check=None)


def test_token_counts_match_tokenize(shared_server: SharedServer, tmp_path: Path) -> None:
    """Input tokens are the server's count of each prompt (/tokenize), output tokens the usage's
    count (ignore_eos: exactly what was asked), not the chunks streamed."""
    base = f"http://127.0.0.1:{shared_server.port}"
    model = str(shared_server.model)
    prompts = ["Hello world, this is a tiny model.", "A rollback brings the lab back.",
               "The quick brown fox jumps over the lazy dog, twice over."]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "output_len": 5 + i}) + "\n"
                            for i, p in enumerate(prompts)))
    params = BenchParams(requests=3, concurrency=3, dataset=str(data), warmup=0)
    outs, _ = BenchClient(base, model, params).run()
    assert all(o.ok for o in outs), [o.error for o in outs]
    for o in outs:
        assert o.chunks <= o.output_tokens
    counted = sorted((o.prompt_tokens, o.output_tokens) for o in outs)
    want = []
    for i, p in enumerate(prompts):
        told = httpx.post(f"{base}/tokenize", json={"model": model, "prompt": p}).json()
        want.append((int(told["count"]), 5 + i))
    assert counted == sorted(want)
    fixed = BenchClient(base, model, BenchParams(requests=2, input_len=24, output_len=6,
                                                 warmup=0)).run()[0]
    assert [(o.prompt_tokens, o.output_tokens) for o in fixed] == [(24, 6), (24, 6)]


@pytest.mark.parametrize(("args", "says"), [
    (("--rate", "-1"), "rate"),
    (("--requests", "0"), "requests"),
    (("--concurrency", "0"), "concurrency"),
    (("--dataset", "/nonexistent/prompts.jsonl"), "dataset"),
    (("--input-len", "250", "--output-len", "50"), "max_model_len"),
])
def test_bad_bench_parameters_exit_2_writing_nothing(shared_server: SharedServer,
                                                     args: tuple[str, ...], says: str) -> None:
    lab = shared_server.lab
    count = bench_count(lab)
    done = llmops(lab, "server", "bench", shared_server.name, *args, "--json", check=2)
    error = json.loads(done.stdout)["error"]
    assert says in error, error
    assert bench_count(lab) == count


def test_unreachable_server_exits_2_writing_nothing(tmp_path: Path) -> None:
    """A server in the lab that nothing answers for (written by hand, never started)."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "work"))
    (lab / "servers").mkdir(exist_ok=True)
    (lab / "servers" / "ghost.toml").write_text(
        'host = "local"\nmodel = "/nonexistent/model"\nport = 18989\n')
    done = llmops(lab, "server", "bench", "ghost", "--json", check=2)
    error = json.loads(done.stdout)["error"]
    assert "does not answer" in error and "llmops server up ghost" in error, error
    assert bench_count(lab) == 0
    missing = llmops(lab, "server", "bench", "nosuch", "--json", check=2)
    assert "no server named nosuch" in json.loads(missing.stdout)["error"]


def test_target_check_fails_on_a_breach_and_passes_otherwise(
        shared_server: SharedServer) -> None:
    base = f"http://127.0.0.1:{shared_server.port}"
    spec = ServerSpec(name="shared", host="local", model=str(shared_server.model),
                      target_ttft_p95_ms=60_000, target_output_tps=0.5)
    with VllmClient(base, spec.api_model()) as client:
        ok, detail = check_targets(client, spec)
        assert ok, detail
        breach = spec.model_copy(update={"target_ttft_p95_ms": 0.001, "target_output_tps": 1e7})
        ok, detail = check_targets(client, breach)
    assert not ok, detail
    assert "MISSED first-token p95" in detail and "MISSED output" in detail
    assert "3 probes missed" in detail


def test_bench_before_and_after_a_change_side_by_side(shared_server: SharedServer) -> None:
    """A change to the spec (a target: vLLM keeps running) makes a new spec commit; the bench
    after it is shown beside the one before, and its rollback puts the target back."""
    lab, name = shared_server.lab, shared_server.name
    before = llmops_json(lab, "server", "bench", name, *SHORT)["bench"]
    changed = llmops_json_slow(lab, "server", "up", name, "--target-output-tps", "0.5")
    try:
        assert changed["ok"], changed
        after = llmops_json(lab, "server", "bench", name, *SHORT, "--compare")
        assert after["bench"]["spec_commit"] != before["spec_commit"]
        assert after["before"]["id"] == before["id"]
        assert after["bench"]["verdicts"][1]["goal"] == 0.5
        assert before["verdicts"][1]["goal"] != 0.5
    finally:
        back = llmops_json_slow(lab, "rollback", str(changed["action"]["id"]))
    assert back["ok"], back
    again = llmops_json(lab, "server", "bench", name, *SHORT)["bench"]
    assert again["spec_sha"] == before["spec_sha"]  # the same text as before the change
