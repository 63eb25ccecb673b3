"""`llmops server ...`: vLLM servers up, down, restarted, listed, their logs and a load test."""

from __future__ import annotations

import tomllib
from typing import Any

import click
from rich.table import Table

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    err,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    refuse_if_read_only,
    report_action,
    stream_progress,
)
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import require_name
from llmops.rollback.summaries import summaries


def parse_arg(pair: str) -> tuple[str, Any]:
    """`K=V` with V read as a TOML value (true, 8, 0.5, {..}) or else as a string."""
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{pair!r} is not K=V", param_hint="--arg")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def current_server(engine: Engine, name: str) -> ServerSpec | None:
    spec = engine.lab.read_spec("server", name)
    return spec if isinstance(spec, ServerSpec) else None


@click.group("server")
def server_group() -> None:
    """vLLM OpenAI servers (sharded with tensor/pipeline parallelism) on your hosts."""


@server_group.command("up")
@click.argument("name")
@click.option("--host", help="Host to run on (required for a new server).")
@click.option("--model", help="Hub id org/name or an absolute path on the host.")
@click.option("--tp", type=int, help="Tensor-parallel size.")
@click.option("--pp", type=int, help="Pipeline-parallel size.")
@click.option("--gpus", help="GPU ids, e.g. 0,1 (CUDA_VISIBLE_DEVICES).")
@click.option("--port", type=int, help="Port clients use (default 8000).")
@click.option(
    "--listen", help="Address the port listens on (default 127.0.0.1; 0.0.0.0 for all)."
)
@click.option("--dtype", help="auto, float16, bfloat16, float32.")
@click.option("--quantization", help="awq, gptq, fp8, bitsandbytes, ...")
@click.option("--max-model-len", type=int, help="Context length.")
@click.option("--gpu-memory-utilization", type=float, help="Fraction of GPU memory for vLLM.")
@click.option("--enable-lora/--no-enable-lora", default=None, help="Serve LoRA adapters.")
@click.option("--max-lora-rank", type=int)
@click.option("--max-loras", type=int, help="LoRA adapters served at once.")
@click.option("--served-model-name", help="The name requests use.")
@click.option("--strategy", type=click.Choice(["recreate", "blue-green", "standby"]))
@click.option("--grace-minutes", type=float, help="Blue-green: keep the old server warm this long.")
@click.option("--cpu-kvcache-gib", type=int, help="CPU build: GiB of KV cache.")
@click.option("--arg", "args", multiple=True, metavar="K=V", help="Extra allowed vLLM flag.")
@json_option
def server_up(name: str, as_json: bool, args: tuple[str, ...], **given: Any) -> None:
    """Start a server, or change it: options not given keep their current value."""
    refuse_if_read_only("server up")
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = current_server(engine, name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        for key, value in given.items():
            if value is not None:
                fields[key] = value
        if given.get("gpus") is not None:
            try:
                fields["gpus"] = [int(g) for g in given["gpus"].split(",") if g.strip()]
            except ValueError:
                fail("gpus: give GPU ids as numbers, e.g. --gpus 0,1", as_json=as_json)
        if args:
            fields["args"] = {**fields.get("args", {}), **dict(parse_arg(a) for a in args)}
        if "host" not in fields or "model" not in fields:
            fail("a new server needs --host and --model", as_json=as_json)
        spec = ServerSpec.model_validate(fields)
        stream_progress(engine, as_json)
        verb = "changed" if current else "up"
        record = engine.act([Change("server", name, spec)], f"server {name} {verb}")
        report_action(record, as_json)


@server_group.command("down")
@click.argument("name")
@json_option
def server_down(name: str, as_json: bool) -> None:
    """Stop a server and remove it from the lab (roll back to bring it back)."""
    refuse_if_read_only("server down")
    with engine_for_cli(as_json) as engine:
        stream_progress(engine, as_json)
        record = engine.act([Change("server", name, None)], f"server {name} down")
        report_action(record, as_json)


@server_group.command("restart")
@click.argument("name")
@json_option
def server_restart(name: str, as_json: bool) -> None:
    """Stop and start a server as it is (same spec): journalled, then its checklist runs."""
    refuse_if_read_only("server restart")
    with engine_for_cli(as_json) as engine:
        stream_progress(engine, as_json)
        report_action(engine.restart("server", name), as_json)


@server_group.command("list")
@json_option
def server_list(as_json: bool) -> None:
    """Servers with their state and latest telemetry."""
    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "server")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "model", "tp×pp", "strategy", "state", "tok/s", "p95", "KV %")
        for r in rows:
            cells = (
                r["name"],
                r["host"],
                r["model"],
                f"{r['tp']}×{r['pp']}",
                r["strategy"],
                r["state"],
                fmt(r.get("tokens_per_s")),
                fmt(r.get("e2e_p95_s"), "s"),
                fmt(r.get("kv_cache_pct")),
            )
            table.add_row(*(esc(c) for c in cells))
        out.print(table)


def fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


@server_group.command("logs")
@click.argument("name")
@click.option("-n", "--lines", type=int, default=100, show_default=True)
@json_option
def server_logs(name: str, lines: int, as_json: bool) -> None:
    """The last lines of the server's log on its host."""
    with engine_for_cli(as_json) as engine:
        found = engine.logs(existing_spec(engine, "server", name, as_json), lines)
        if as_json:
            emit_json(found)
        else:
            for line in found:
                click.echo(line)


@server_group.command("bench")
@click.argument("name")
@click.option("--requests", type=int, default=32, show_default=True)
@click.option("--concurrency", type=int, default=4, show_default=True)
@click.option("--max-tokens", type=int, default=32, show_default=True)
@json_option
def server_bench(
    name: str, requests: int, concurrency: int, max_tokens: int, as_json: bool
) -> None:
    """A bounded load test through the tunnel: tokens/s, TTFT and latency p50/p95, cost."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "server", name, as_json)
        try:
            result = engine.bench(
                spec,
                requests=requests,
                concurrency=concurrency,
                max_tokens=max_tokens,
                progress=None
                if as_json
                else lambda n, total: err.print(f"[dim]{n}/{total}[/]", end="\r"),
            )
        except ValueError as exc:
            fail(str(exc), as_json=as_json)
        summary = result.summary()
        if as_json:
            emit_json(summary)
            return
        for key, value in summary.items():
            out.print(f"{key:>24}: {esc('-' if value is None else value)}")
        for sample in result.error_samples:
            out.print(f"[red]error:[/] {esc(sample)}")
