"""`llmops cluster ...`: Ray clusters over lab hosts, for servers sharded across them. `up`
creates or changes one (head first, then the workers, until the GCS shows every node), `down`
stops the nodes in reverse and takes it out of the lab, `list`/`show`/`status` read the GCS,
`logs` reads each node's `ray start` log and its Ray worker logs.
Rollback goes through `llmops rollback` like every action: the whole cluster reverts as one."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    esc,
    existing_spec,
    json_option,
    out,
    print_rows,
    put_spec,
    refuse_if_read_only,
    remove_resource,
)
from llmops.console.cli.completion import logs_command, names_of
from llmops.console.cli.runs import options_given
from llmops.console.cli.spec_options import spec_options
from llmops.ops.kinds.cluster.spec import ClusterSpec

REFS = {"head": "host"}


@click.group("cluster")
def cluster_group() -> None:
    """Ray clusters: a head host and worker hosts that a server shards one model across
    (vLLM's Ray backend, pipeline_parallel_size spanning the nodes)."""


@cluster_group.command("up")
@click.argument("name", shell_complete=names_of("cluster"))
@spec_options(ClusterSpec, refs=REFS, skip=("resources",))
@click.option("--resources", "resources", metavar="K=V,K=V", default=None,
              help="Custom Ray resources per node, NAME=AMOUNT (e.g. accel_slot=1).")
@json_option
def cluster_up(name: str, resources: str | None, as_json: bool, **given: Any) -> None:
    """Create or change a cluster: `ray start --head` on --head, `ray start --address` on each
    of --workers, detached, until the GCS shows every node; one action."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("cluster up")
    values = options_given(ClusterSpec, given, as_json)
    if resources is not None:
        values["resources"] = parse_resources(resources)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("cluster", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.update(values)
        spec = ClusterSpec.model_validate(fields)
        if current is not None and not as_json:
            from llmops.rollback.changes import Change

            for c in engine.with_followers([Change("cluster", name, spec)])[1:]:
                out.print(Text(f"  {c.kind} {c.name} follows (its ranks die with the nodes: "
                               "restarted on the new Ray and checked; a failure reverts the "
                               "cluster too)"))
        put_spec(engine, "cluster", spec, "added", as_json)


def parse_resources(text: str) -> dict[str, float]:
    """`a=1,b=0.5` -> {"a": 1.0, "b": 0.5}; a pair that does not read is refused (exit 2)."""
    found: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, amount = pair.partition("=")
        try:
            found[key.strip()] = float(amount)
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(f"{pair!r}: give NAME=AMOUNT", param_hint="--resources")
    return found


@cluster_group.command("down")
@click.argument("name", shell_complete=names_of("cluster"))
@json_option
def cluster_down(name: str, as_json: bool) -> None:
    """Stop every node (workers first, the head last) and take the cluster out of the lab
    (refused while a server names it; roll back to bring it back)."""
    remove_resource("cluster down", "cluster", name, f"cluster {name} down", as_json)


@cluster_group.command("list")
@json_option
def cluster_list(as_json: bool) -> None:
    """Clusters: head, workers, state (up, degraded, down, stopped), Ray, interface."""
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "cluster")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "head", "workers", "state", "ray", "interface", "port")
        for r in rows:
            cells = (r["name"], r.get("head", "?"), ", ".join(r.get("workers", [])) or "-",
                     r["state"], r.get("ray", "?"), r.get("interface", "?"), r.get("port", "?"))
            table.add_row(*(esc(str(c)) for c in cells))
        print_rows(table, "clusters", "`llmops cluster up NAME --head H1 --workers H2`")


@cluster_group.command("status")
@click.argument("name", shell_complete=names_of("cluster"))
@json_option
def cluster_status(name: str, as_json: bool) -> None:
    """The GCS's view now: each node (process, address, alive, resources) and where every
    placement group's bundles run (vLLM's workers); exit 1 unless every node is alive."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "cluster", name, as_json)
        report = engine.report(spec) or {}
        if as_json:
            emit_json(report)
        else:
            _print_report(report)
    raise SystemExit(0 if report.get("state") == "up" else 1)


@cluster_group.command("show")
@click.argument("name", shell_complete=names_of("cluster"))
@json_option
def cluster_show(name: str, as_json: bool) -> None:
    """The cluster's spec and the GCS's view (as `status`, always exit 0)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "cluster", name, as_json)
        report = engine.report(spec) or {}
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), **report})
            return
        for key, value in spec.model_dump().items():
            out.print(Text(f"{key:>16}: {value}"))
        _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    out.print(Text(f"state: {report.get('state')} ({report.get('alive')}/"
                   f"{report.get('expected')} nodes alive)", style="bold"))
    table = Table("host", "role", "process", "address", "alive", "resources")
    for n in report.get("nodes", []):
        res = ", ".join(f"{k}={v:g}" for k, v in sorted((n.get("resources") or {}).items())
                        if k != "memory")
        table.add_row(*(esc(str(c)) for c in (n["host"], n["role"], n.get("process"),
                                              n.get("address", "-"), n.get("alive", "?"),
                                              res or "-")))
    out.print(table)
    for pg in report.get("placement", []):
        where = ", ".join(f"#{b['index']}@{b['host']}" for b in pg["bundles"])
        out.print(Text(f"placement group {pg['id'][:12]} {pg['state']}: {where}"))


cluster_group.add_command(logs_command(
    "cluster", "Each node's `ray start` log, then its newest Ray worker logs (what vLLM's ranks "
    "placed there said)."))

COMMANDS = [cluster_group]
