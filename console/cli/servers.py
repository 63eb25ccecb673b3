"""`llmops server ...`: vLLM servers up, down, restarted, listed, their logs and a load test."""

from __future__ import annotations

import shlex
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
    put_spec,
    refuse_if_read_only,
    remove_resource,
    report_action,
    stream_progress,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Engine
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
@click.argument("name", shell_complete=names_of("server"))
@spec_options(ServerSpec, skip={"args"})
@click.option("--arg", "args", multiple=True, metavar="K=V", help="Extra allowed vLLM flag.")
@json_option
def server_up(name: str, as_json: bool, args: tuple[str, ...], **given: Any) -> None:
    """Start a server, or change it: options not given keep their current value."""
    refuse_if_read_only("server up")
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = current_server(engine, name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.update(given_fields(ServerSpec, given))
        if args:
            fields["args"] = {**fields.get("args", {}), **dict(parse_arg(a) for a in args)}
        if "host" not in fields or "model" not in fields:
            fail("a new server needs --host and --model", as_json=as_json)
        spec = ServerSpec.model_validate(fields)
        put_spec(engine, "server", spec, "up", as_json)


@server_group.command("down")
@click.argument("name", shell_complete=names_of("server"))
@json_option
def server_down(name: str, as_json: bool) -> None:
    """Stop a server and remove it from the lab (roll back to bring it back)."""
    remove_resource("server down", "server", name, f"server {name} down", as_json)


@server_group.command("restart")
@click.argument("name", shell_complete=names_of("server"))
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


server_group.add_command(logs_command("server", "The last lines of the server's log on its host."))


@server_group.command("command")
@click.argument("name", shell_complete=names_of("server"))
@json_option
def server_command(name: str, as_json: bool) -> None:
    """The exact argv and environment the server is started with (paste it into a vLLM bug
    report); built from the spec and the host's last probe, nothing is run."""
    with engine_for_cli(as_json) as engine:
        found = engine.commands(existing_spec(engine, "server", name, as_json))
        if as_json:
            emit_json(found)
            return
        for command in found:
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(command.env.items()))
            click.echo(f"# {command.proc}\n{env} {shlex.join(command.argv)}".replace("\n ", "\n"))


@server_group.command("bench")
@click.argument("name", shell_complete=names_of("server"))
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
