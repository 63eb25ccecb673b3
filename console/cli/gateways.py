"""`llmops gateway ...`: LiteLLM gateways in front of the lab's servers. `up` makes or changes
one (models routed to servers by name, fallbacks, prices: a server without a price gets the
cost per token of its last bench); `down`, `list`, `logs`, `usage` (tokens, cost, cache hits
and fallbacks per model, from the gateway's usage lines) and `try` (a prompt through it:
which server answered, the cost). The master key is only ever named (`--master-key-env`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    put_spec,
    refuse_if_read_only,
    remove_resource,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.gateway.spec import GatewaySpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine


def routes(given: tuple[str, ...], flag: str, as_json: bool) -> dict[str, list[str]] | None:
    """`--model chat=a,b --model code=c` -> {"chat": ["a", "b"], "code": ["c"]}."""
    if not given:
        return None
    found: dict[str, list[str]] = {}
    for item in given:
        name, sep, rest = item.partition("=")
        targets = [t.strip() for t in rest.split(",") if t.strip()]
        if not sep or not name.strip() or not targets:
            fail(f"{flag}: {item!r} is not NAME=A[,B...]", as_json=as_json)
        found[name.strip()] = targets
    return found


def prices_given(given: tuple[str, ...], as_json: bool) -> dict[str, dict[str, float]]:
    """`--price a=0.5/1.5` -> {"a": {"input_per_1m": 0.5, "output_per_1m": 1.5}}."""
    found = {}
    for item in given:
        server, _, pair = item.partition("=")
        inp, _, outp = pair.partition("/")
        try:
            found[server.strip()] = {"input_per_1m": float(inp), "output_per_1m": float(outp)}
        except ValueError:
            fail(f"--price: {item!r} is not SERVER=INPUT/OUTPUT (cost per 1M tokens)",
                 as_json=as_json)
    return found


GUARD_KEYS = ("label", "threshold", "on_error", "timeout_s")


def guards_given(given: tuple[str, ...], as_json: bool) -> dict[str, dict[str, Any]] | None:
    """`--guard chat=gd,threshold=0.8,on_error=open` -> {"chat": {"server": "gd",
    "threshold": "0.8", "on_error": "open"}} (pydantic converts); `--guard none` clears."""
    if not given:
        return None
    if given == ("none",):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for item in given:
        model, sep, rest = item.partition("=")
        server, *options = [part.strip() for part in rest.split(",")]
        if not sep or not model.strip() or not server:
            fail(f"--guard: {item!r} is not MODEL=SERVER[,KEY=VALUE...]", as_json=as_json)
        guard: dict[str, Any] = {"server": server}
        for option in options:
            key, eq, value = (p.strip() for p in option.partition("="))
            if not eq or key not in GUARD_KEYS:
                fail(f"--guard: {option!r} in {item!r}: give KEY=VALUE with KEY one of "
                     f"{', '.join(GUARD_KEYS)}", as_json=as_json)
            guard[key] = value
        found[model.strip()] = guard
    return found


def bench_prices(engine: Engine, spec: GatewaySpec) -> dict[str, dict[str, float]]:
    """Per-token prices from each priceless server's last bench (its cost per 1M input and
    output tokens), where one was measured with a host price."""
    found = {}
    for server in spec.servers():
        if server in spec.prices:
            continue
        bench = engine.last_bench(server)
        cost = (bench or {}).get("cost") or {}
        inp, outp = cost.get("per_1m_input"), cost.get("per_1m_output")
        if isinstance(inp, int | float) and isinstance(outp, int | float):
            found[server] = {"input_per_1m": float(inp), "output_per_1m": float(outp)}
    return found


@click.group("gateway")
def gateway_group() -> None:
    """LiteLLM gateways: one OpenAI endpoint routing model names to the lab's servers, with
    fallbacks, a cache, token and cost tracking; changes reload without dropping requests."""


@gateway_group.command("up")
@click.argument("name", shell_complete=names_of("gateway"))
@spec_options(GatewaySpec, refs={"host": "host", "env": "env"})
@click.option("--model", "model_", multiple=True, metavar="NAME=SERVER[,SERVER]",
              help="A model name and the lab servers that serve it; repeat for more.")
@click.option("--fallback", multiple=True, metavar="NAME=OTHER[,OTHER]",
              help="Model names tried when NAME fails; repeat for more.")
@click.option("--price", multiple=True, metavar="SERVER=IN/OUT",
              help="A server's cost per 1M input/output tokens (default: its last bench).")
@click.option("--guard", multiple=True, metavar="MODEL=SERVER[,KEY=VALUE]",
              help="A guard model (a classifier server) asked before MODEL's requests; keys: "
              "label (unsafe), threshold (0.5), on_error (closed|open), timeout_s (5). Repeat "
              "for more; replaces the table when given; `--guard none` removes every guard.")
@click.option("--bench-prices/--no-bench-prices", "use_bench", default=True, show_default=True,
              help="Price servers without --price from their last bench's cost per token.")
@json_option
def gateway_up(name: str, model_: tuple[str, ...], fallback: tuple[str, ...],
               price: tuple[str, ...], guard: tuple[str, ...], use_bench: bool, as_json: bool,
               **given: Any) -> None:
    """Start a gateway, or change it: options not given keep their current value (--model
    replaces the whole routing table when given)."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("gateway up")
    try:
        values = given_fields(GatewaySpec, given)
    except click.BadParameter as exc:
        fail(f"{exc.param_hint}: {exc.message}", as_json=as_json)
    models = routes(model_, "--model", as_json)
    fallbacks = routes(fallback, "--fallback", as_json)
    guards = guards_given(guard, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("gateway", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.update(values)
        if models is not None:
            fields["models"] = models
            routed = {s for servers in models.values() for s in servers}
            fields["prices"] = {k: v for k, v in fields.get("prices", {}).items()
                                if k in routed}  # a server no longer routed keeps no price
        if fallbacks is not None:
            fields["fallbacks"] = fallbacks
        if guards is not None:
            fields["guards"] = guards
        if price:
            fields["prices"] = {**fields.get("prices", {}), **prices_given(price, as_json)}
        if current is None and ("host" not in fields or "models" not in fields):
            fail("a new gateway needs --host and --model NAME=SERVER", as_json=as_json)
        spec = GatewaySpec.model_validate(fields)
        if use_bench:
            found = bench_prices(engine, spec)
            if found:
                spec = GatewaySpec.model_validate(
                    {**spec.model_dump(), "prices": {**spec.model_dump()["prices"], **found}})
        put_spec(engine, "gateway", spec, "up", as_json)


@gateway_group.command("down")
@click.argument("name", shell_complete=names_of("gateway"))
@json_option
def gateway_down(name: str, as_json: bool) -> None:
    """Stop a gateway and remove it from the lab (roll back to bring it back)."""
    remove_resource("gateway down", "gateway", name, f"gateway {name} down", as_json)


@gateway_group.command("list")
@json_option
def gateway_list(as_json: bool) -> None:
    """Gateways with their state, routes and usage so far."""
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = with_usage(engine, summaries(engine, "gateway"))
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "port", "state", "models", "requests", "cost", "errors")
        for r in rows:
            routes_text = "; ".join(f"{m} -> {','.join(s)}" for m, s in r["models"].items())
            unread = "?" if r.get("usage_error") else "-"
            cells = (r["name"], r["host"], r["port"], r["state"], routes_text,
                     _num(r.get("requests"), "{:.0f}", unread),
                     _num(r.get("cost"), "{:.6f}", unread),
                     _num(r.get("errors"), "{:.0f}", unread))
            table.add_row(*(esc(c) for c in cells))
        out.print(table)
        for r in rows:
            if r.get("usage_error"):
                out.print(f"[yellow]{esc(r['name'])}: usage not read ({esc(r['usage_error'])})"
                          "[/]")


def with_usage(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's requests, cost and errors counted from the gateway's usage lines now (what
    `gateway usage` reads), not from the console's last telemetry sample: a lab used from
    the CLI alone has no sample, so `gateway try` answered and `list` said `requests -`
    (user4, R3); a sample also ages when no console runs. Where the lines cannot be read
    the row keeps its sample's figures and says why (`usage_error`)."""
    from llmops.rollback.operate import TransportError

    for row in rows:
        spec = engine.lab.read_spec("gateway", str(row["name"]))
        if not isinstance(spec, GatewaySpec):  # a pending removal: nothing to read
            continue
        try:
            total = (engine.report(spec) or {}).get("total") or {}
        except (TransportError, OSError, ValueError, KeyError) as exc:
            row["usage_error"] = str(exc)[:200] or type(exc).__name__
            continue
        row.update(requests=total.get("requests"), cost=total.get("cost"),
                   errors=total.get("errors"))
    return rows


def _num(value: Any, fmt: str, missing: str = "-") -> str:
    return missing if value is None else fmt.format(value)


gateway_group.add_command(logs_command("gateway", "The last lines of the gateway's log."))


@gateway_group.command("usage")
@click.argument("name", shell_complete=names_of("gateway"))
@json_option
def gateway_usage(name: str, as_json: bool) -> None:
    """Requests, errors, tokens, cost, cache hits and fallbacks per model, from the usage
    lines the gateway's callback appends on its host (no database)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "gateway", name, as_json)
        report = engine.report(spec) or {}
        if as_json:
            emit_json(report)
            return
        table = Table("model", "requests", "errors", "prompt tok", "completion tok", "cost",
                      "cache hits", "fallbacks", "blocked", "redacted", "unchecked",
                      "backends")
        for model, m in report.get("models", {}).items():
            backends = ", ".join(f"{b} ×{n}" for b, n in m["backends"].items())
            table.add_row(esc(model), str(m["requests"]), str(m["errors"]),
                          str(m["prompt_tokens"]), str(m["completion_tokens"]),
                          f"{m['cost']:.6f}", str(m["cache_hits"]), str(m["fallbacks"]),
                          str(m["blocked"]), str(m["redacted"]),
                          str(m.get("unchecked", 0)), esc(backends))
        out.print(table)


@gateway_group.command("try")
@click.argument("name", shell_complete=names_of("gateway"))
@click.argument("prompt")
@click.option("--model", "model_", default=None, help="The model name [default: the first].")
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=32, show_default=True)
@json_option
def gateway_try(name: str, prompt: str, model_: str | None, max_tokens: int,
                as_json: bool) -> None:
    """Send a prompt through the gateway: the answer, the server that gave it, its cost,
    whether the cache answered and how many fallbacks were tried (changes nothing)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "gateway", name, as_json)
        assert isinstance(spec, GatewaySpec)
        model = model_ or next(iter(spec.models))
        try:
            answer = engine.gateway_try(spec, model, prompt, max_tokens)
        except SpecError as exc:
            fail(str(exc), as_json=as_json)
        if as_json:
            emit_json(answer)
            if not answer["ok"]:
                raise SystemExit(1)
            return
        if not answer["ok"]:
            fail(f"HTTP {answer['status']}: {answer['error']}", 1)
        out.print(esc(answer["text"]))
        cost = "-" if answer["cost"] is None else f"{answer['cost']:.8f}"
        out.print(f"[grey50]{esc(model)} answered by {esc(answer['server'] or '?')} "
                  f"({esc(answer['api_base'])}) · {answer['prompt_tokens']}+"
                  f"{answer['completion_tokens']} tokens · cost {cost} · "
                  f"{'cache hit · ' if answer['cache_hit'] else ''}fallbacks "
                  f"{answer['fallbacks']} · {answer['seconds']:.2f}s[/]")


@gateway_group.command("drill")
@click.argument("name", shell_complete=names_of("gateway"))
@click.option("--port", "port", type=click.IntRange(1024, 65535), default=None,
              help="The drill proxy's port [default: the gateway's + 1].")
@json_option
def gateway_drill(name: str, port: int | None, as_json: bool) -> None:
    """The fallback drill: for each model with fallbacks, a drill proxy (another port, never
    the production one) whose config has that model's servers dead; one prompt must be
    answered by a fallback's server. Nothing in the lab or on production changes."""
    refuse_if_read_only("gateway drill")  # it starts and stops a process on the host
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "gateway", name, as_json)
        assert isinstance(spec, GatewaySpec)
        try:
            found = engine.gateway_drill(spec, port or spec.port + 1)
        except SpecError as exc:
            fail(str(exc), as_json=as_json)
        ok = all(r["ok"] for r in found.values())
        if as_json:
            emit_json({"ok": ok, "models": found})
        else:
            for model, r in found.items():
                mark = "[green]✓[/]" if r["ok"] else "[red]✗[/]"
                said = (f"answered by {r['server']} ({r['api_base']}), fallbacks "
                        f"{r['fallbacks']}" if r["status"] == 200 else
                        f"HTTP {r['status']}: {r['error'][:200]}")
                out.print(f"{mark} {esc(model)} with its servers dead: {esc(said)} "
                          f"(expects one of {esc(', '.join(r['expected']))}; {r['seconds']}s)")
        if not ok:
            raise SystemExit(1)
