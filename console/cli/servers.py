"""`llmops server ...`: vLLM servers up, down, restarted, listed, their logs and a load test."""

from __future__ import annotations

import shlex
import time
import tomllib
from typing import TYPE_CHECKING, Any

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
    print_rows,
    put_spec,
    refuse_if_read_only,
    remove_resource,
    report_action,
    settings,
    stream_progress,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine


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
@spec_options(ServerSpec, skip={"args"}, refs={"env": "env"})
@click.option("--arg", "args", multiple=True, metavar="K=V", help="Extra allowed vLLM flag.")
@json_option
def server_up(name: str, as_json: bool, args: tuple[str, ...], **given: Any) -> None:
    """Start a server, or change it: options not given keep their current value."""
    from llmops.rollback.lab import require_name

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
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "server")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "model", "tp×pp", "strategy", "state", "tok/s", "p95", "KV %",
                      "verdict", "$/1M out")
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
                r.get("last_verdict") or "-",
                fmt(r.get("cost_per_1m_output")),
            )
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "servers", "`llmops server up NAME --host H --model M`")


def fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


server_group.add_command(logs_command("server", "The last lines of the server's log on its host."))


@server_group.command("show")
@click.argument("name", shell_complete=names_of("server"))
@json_option
def server_show(name: str, as_json: bool) -> None:
    """The server's spec and state; one sharded over a cluster adds the cluster's nodes: host,
    address, Ray alive, its vLLM workers placed there, each node's GPUs (or why none)."""
    from llmops.console.presenters.cluster import gpu_text, sharded_nodes
    from llmops.rollback.operate import TransportError
    from llmops.rollback.summaries import status

    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "server", name, as_json)
        assert isinstance(spec, ServerSpec)
        try:
            state = status(engine.hosts, spec)
        except TransportError as exc:
            state = f"unreachable: {exc}"[:80]
        found: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "state": state}
        if spec.cluster:
            cluster = engine.lab.read_spec("cluster", spec.cluster)
            report = (engine.report(cluster) or {}) if cluster is not None else {}
            found["cluster"] = {"name": spec.cluster, "state": report.get("state", "missing"),
                                "alive": report.get("alive"), "expected": report.get("expected"),
                                "device": report.get("device")}
            found["nodes"] = sharded_nodes(report, name)
        if as_json:
            emit_json(found)
            return
        for key, value in spec.model_dump().items():
            out.print(esc(f"{key:>24}: {value}"))
        out.print(esc(f"{'state':>24}: {state}"))
        if spec.cluster:
            c = found["cluster"]
            out.print(esc(f"cluster {spec.cluster}: {c['state']} ({c['alive'] or 0}/"
                          f"{c['expected']} nodes alive in Ray)"))
            table = Table("host", "role", "address", "Ray", "vLLM workers", "others", "GPUs")
            for n in found["nodes"]:
                table.add_row(*(esc(str(v)) for v in (
                    n["host"], n["role"], n["address"] or "-",
                    "alive" if n["ray_alive"] else "DOWN",
                    ", ".join(f"pid {w['pid']}" for w in n["workers"]) or "-",
                    ", ".join(n["others"]) or "-", gpu_text(n))))
            out.print(table)


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


def bench_options(f: Any) -> Any:
    """One option per BenchParams field (its description as help; unset: the default)."""
    for fname, info in reversed(list(BenchParams.model_fields.items())):
        dash = fname.replace("_", "-")
        kinds = [a for a in getattr(info.annotation, "__args__", (info.annotation,))
                 if a is not type(None)]
        kind = kinds[0] if kinds else str
        help_text = f"{info.description} [default: {info.default}]"
        if kind is bool:
            f = click.option(f"--{dash}/--no-{dash}", fname, default=None, help=help_text)(f)
        else:
            f = click.option(f"--{dash}", fname, type=kind, default=None, help=help_text)(f)
    return f


@server_group.command("bench")
@click.argument("name", shell_complete=names_of("server"))
@bench_options
@click.option("--compare", is_flag=True, help="Show the bench before it side by side.")
@json_option
def server_bench(name: str, compare: bool, as_json: bool, **given: Any) -> None:
    """A load test through the tunnel, as `vllm bench serve` measures one: requests/s, input
    and output tok/s, TTFT / TPOT / ITL / e2e mean, median, p95, p99, goodput, each target
    passed or failed, cost per 1M tokens; stored per server and spec commit."""
    with engine_for_cli(as_json) as engine:
        existing_spec(engine, "server", name, as_json)
        params = BenchParams(**{k: v for k, v in given.items() if v is not None})

        def progress(done: int, total: int | None, seconds: float) -> None:
            err.print(f"[dim]{done}/{total or '?'} requests, {seconds:.1f} s[/]", end="\r")

        row = engine.run_bench(name, params, store=not settings().read_only,
                               progress=None if as_json else progress)
        before = engine.bench_pair(name)[0] if compare else None
        if as_json:
            emit_json({"ok": True, "bench": row, **({"before": before} if compare else {})})
            return
        show_bench(row, before if compare else None, compared=compare)


@server_group.command("benches")
@click.argument("name", shell_complete=names_of("server"))
@click.option("--compare", is_flag=True,
              help="The newest bench beside the newest of the spec before it.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def server_benches(name: str, compare: bool, limit: int, as_json: bool) -> None:
    """The server's stored benches, newest first (or the last two versions side by side)."""
    with engine_for_cli(as_json) as engine:
        existing_spec(engine, "server", name, as_json)
        if compare:
            before, after = engine.bench_pair(name)
            if as_json:
                emit_json({"before": before, "after": after})
            elif after is None:
                out.print(f"no bench of {esc(name)} yet: `llmops server bench {esc(name)}`")
            else:
                show_bench(after, before, compared=True)
            return
        rows = engine.benches(name, limit)
        if as_json:
            emit_json(rows)
            return
        table = Table("id", "when", "spec", "verdict", "req/s", "out tok/s", "TTFT p95 ms",
                      "e2e p95 ms", "failed", "$/1M out")
        for r in rows:
            f = r["figures"]
            table.add_row(*(esc(str(c)) for c in (
                r["id"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"])),
                r["spec_commit"][:8], r["verdict"], f"{f['request_throughput']:.2f}",
                f"{f['output_throughput']:.1f}", f"{f['ttft_ms']['p95']:.1f}",
                f"{f['e2el_ms']['p95']:.1f}", f["failed"],
                fmt((r.get("cost") or {}).get("per_1m_output"), ""))))
        out.print(table)


def show_bench(row: dict[str, Any], before: dict[str, Any] | None, *, compared: bool) -> None:
    """One bench's figures (and the one before it, side by side), verdicts, errors."""
    from llmops.rollback.summaries import bench_side_by_side

    title = f"bench of {row['server']} at spec {row['spec_commit'][:8]}"
    if compared:
        cols = ["figure", f"before ({before['spec_commit'][:8]})" if before else "before",
                f"now ({row['spec_commit'][:8]})", "change"]
        table = Table(*cols, title=esc(title))
        for cells in bench_side_by_side(before, row):
            table.add_row(*(esc(c) for c in cells))
        if before is None:
            out.print("[dim]no earlier bench of this server to compare with[/]")
    else:
        table = Table("figure", "value", title=esc(title))
        for label, _, value, _ in bench_side_by_side(None, row):
            table.add_row(esc(label), esc(value))
    out.print(table)
    for sample in row.get("errors") or []:
        out.print(f"[red]error:[/] {esc(sample)}")
