"""Alert commands: `llmops alert watch`, `llmops alert list` (issue 12).

`watch` is the console's telemetry poll without the console: each round samples every server
of the lab (stored in `telemetry` like the console's samples), runs the samples through the
alert rules and their hysteresis (rollback/alerts.py), journals raises and clears and runs the
operator's command from `alerts.toml`. `--once` is one round for cron: it samples twice,
`--interval` apart, since rates and the TTFT window need two samples."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    err,
    esc,
    fail,
    json_option,
    out,
    settings,
)
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.rollback.alerts import AlertEvent
    from llmops.rollback.engine import Engine
    from llmops.rollback.telemetry import TelemetryPoller

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""


@click.group("alert")
def alert_group() -> None:
    """Alerts on servers' targets and thresholds: watch without the console, list."""


def servers_of(engine: Engine, names: tuple[str, ...]) -> list[ServerSpec]:
    specs = {n: s for (k, n), s in engine.lab.specs().items()
             if k == "server" and isinstance(s, ServerSpec)}
    missing = [n for n in names if n not in specs]
    if missing:
        fail(f"server: there is no server named {missing[0]} (see `llmops server list`)")
    return [specs[n] for n in sorted(names or specs)]


def one_round(engine: Engine, poller: TelemetryPoller, specs: list[ServerSpec], act: bool,
              evaluate: bool = True) -> list[AlertEvent]:
    """Sample every server once; with `evaluate`, through the alert rules. A server that does
    not answer is observed, so a crash is told from a start."""
    events: list[AlertEvent] = []
    config = engine.alert_config()
    for spec in specs:
        sample = poller.poll(spec)
        if not evaluate:
            continue
        state = None if sample.up else observed_state(engine, spec)
        events += engine.observe_alerts(spec, sample, state, act=act, config=config)
    return events


def observed_state(engine: Engine, spec: ServerSpec) -> str:
    try:
        return engine.status(spec, answering=False)
    except Exception:  # noqa: BLE001 - a host that does not answer: the server is down too
        return "unreachable"


def show(events: list[AlertEvent], as_json: bool) -> None:
    for event in events:
        if as_json:
            click.echo(json.dumps(event.payload()))  # one line per alert: JSON lines
        else:
            colour = "red" if event.transition == "raised" else "green"
            out.print(f"[{colour}]{event.transition}[/] {esc(event.at)} {esc(event.message)}")


def heartbeat(done: int, specs: list[ServerSpec], events: list[AlertEvent],
              as_json: bool) -> None:
    """At a terminal, a dim line per round: a watch that prints nothing until an alert looked
    the same as one that hung. Not to a pipe, a log or cron's mail (alerts only there)."""
    if as_json or not err.is_terminal:
        return
    names = ", ".join(s.name for s in specs)
    changed = f"{len(events)} alert change(s)" if events else "no alert change"
    err.print(Text(f"{time.strftime('%H:%M:%S')} round {done}: sampled {names}: {changed}"
                   " (Ctrl-C stops)", style="dim"))


@alert_group.command("watch")
@click.option("--server", "names", multiple=True, help="Only these servers (default: all).")
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True,
              help="Seconds between samples.")
@click.option("--once", is_flag=True, help="One round (two samples --interval apart), for cron.")
@click.option("--rounds", type=click.IntRange(1, None), default=None,
              help="Stop after this many rounds (default: until interrupted).")
@json_option
def alert_watch(names: tuple[str, ...], interval: float, once: bool, rounds: int | None,
                as_json: bool) -> None:
    """Watch servers and raise alerts without the console (JSON lines with --json)."""
    from llmops.rollback.telemetry import TelemetryPoller

    act = not settings().read_only
    with engine_for_cli(as_json) as engine:
        engine.alert_config()  # a bad alerts.toml is refused before anything is sampled
        specs = servers_of(engine, names)
        if not specs:
            fail("no servers in the lab to watch (see `llmops server up`)", as_json=as_json)
        poller = TelemetryPoller(engine)
        try:
            if once:
                one_round(engine, poller, specs, act, evaluate=False)
                time.sleep(interval)
                show(one_round(engine, poller, specs, act), as_json)
                return
            done = 0
            while rounds is None or done < rounds:
                events = one_round(engine, poller, specs, act)
                show(events, as_json)
                done += 1
                heartbeat(done, specs, events, as_json)
                if rounds is None or done < rounds:
                    time.sleep(interval)
        except KeyboardInterrupt:
            return
        finally:
            poller.close()


@alert_group.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def alert_list(limit: int, as_json: bool) -> None:
    """Active alerts and the recent ones, newest first."""
    with engine_for_cli(as_json) as engine:
        found = engine.alerts(limit)
    if as_json:
        emit_json(found)
        return
    for title, rows in (("active", found["active"]), ("recent", found["recent"])):
        if not rows:  # two tables of headers told nothing
            out.print(f"{title} alerts: none")
            continue
        table = Table("id", "raised", "cleared", "value", "command", "message", title=title)
        for row in rows:
            table.add_row(str(row["id"]), _when(row["raised_at"]), _when(row["cleared_at"]),
                          _value(row), _command(row), esc(row["message"]))
        out.print(table)


def _when(at: str | None) -> str:
    return "-" if not at else at[:19].replace("T", " ")


def _value(row: dict[str, Any]) -> str:
    return "-" if row["value"] is None else f"{row['value']:.4g} {row['unit'] or ''}".strip()


def _command(row: dict[str, Any]) -> str:
    if row["command_rc"] is None and not row["command_error"]:
        return "-"
    return f"exit {row['command_rc']}" if row["command_rc"] is not None else "failed"


COMMANDS += [alert_group]
