"""`llmops status --json`: per server latency, throughput, cost, eval and verdicts (issue 12).

The payload an operator pastes into a report: each server's state, its last bench's first-token
p95 and output tok/s against its targets, the cost per 1M tokens, the last eval's accuracy."""

from __future__ import annotations

import time

import click
from rich.table import Table

from llmops.console.cli.common import emit_json, engine_for_cli, esc, json_option, print_rows


@click.command("status")
@click.option("--no-observe", is_flag=True, help="Skip asking the hosts (state shows '?').")
@json_option
def status_command(no_observe: bool, as_json: bool) -> None:
    """Every server at a glance: latency p95, throughput, cost per 1M tokens, last eval
    accuracy and target verdicts (from its last bench)."""
    from llmops.rollback.summaries import fmt, server_status

    with engine_for_cli(as_json) as engine:
        rows = server_status(engine, observe=not no_observe)
        if as_json:
            emit_json({"at": time.time(), "servers": rows})
            return
        table = Table("server", "state", "TTFT p95 ms", "target", "out tok/s", "target",
                      "$/1M out", "eval acc", "verdict")
        for r in rows:
            table.add_row(*(esc(c) for c in (
                r["name"], r["state"], fmt(r["latency_p95_ms"], "{:.1f}"),
                fmt(r["targets"]["ttft_p95_ms"], "<{:g}"), fmt(r["throughput_tok_s"], "{:.1f}"),
                fmt(r["targets"]["output_tps"], ">{:g}"), fmt(r["cost_per_1m_output"], "{:.4f}"),
                fmt(r["eval_accuracy"], "{:.3f}"), r["verdict"] or "no bench")))
        print_rows(table, "servers", "`llmops server up NAME --host H --model M`")


COMMANDS: list[click.Command] = [status_command]
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
