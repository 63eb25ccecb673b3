"""`llmops host ...`: add, list, probe and remove hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    settings,
)
from llmops.console.cli.completion import names_of
from llmops.console.cli.spec_options import given_fields, spec_options
from llmops.console.presenters.host_words import cuda_cell
from llmops.ops.kinds.host.spec import HostSpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine


def gib(n: int | None) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "?"


def field(key: str, value: object) -> None:
    """One `key: value` line; the value is the host's or the spec's text, never markup."""
    out.print(Text(f"{key:>16}: {value}"))


@click.group("host")
def host_group() -> None:
    """Machines llmops runs things on, reached over SSH (or this one, `--local`)."""


@host_group.command("add")
@click.argument("name", shell_complete=names_of("host"))
@spec_options(HostSpec)
@click.option(
    "--trust",
    metavar="FINGERPRINT",
    help="Trust this host key fingerprint (SHA256:...) on first connect.",
)
@json_option
def host_add(name: str, trust: str | None, as_json: bool, **given: Any) -> None:
    """Add a host, or change one: options not given keep their current value. Connect,
    probe, journal."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("host add")
    with engine_for_cli(as_json, create=True) as engine:
        require_name(name)
        current = engine.lab.read_spec("host", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.update(given_fields(HostSpec, given))
        spec = HostSpec.model_validate(fields)
        put_spec(engine, "host", spec, "added", as_json, trust={name: trust} if trust else None)


@host_group.command("remove")
@click.argument("name", shell_complete=names_of("host"))
@json_option
def host_remove(name: str, as_json: bool) -> None:
    """Remove a host from the lab (refused while servers or runs use it)."""
    remove_resource("host remove", "host", name, f"host {name} removed", as_json)


@host_group.command("list")
@json_option
def host_list(as_json: bool) -> None:
    """Hosts in the lab with what their last probe found."""
    with engine_for_cli(as_json) as engine:
        rows = []
        for (kind, name), spec in engine.lab.specs().items():
            if kind == "host":
                rows.append((spec, engine.lab.journal.observed("host", name) or {}))
        if as_json:
            emit_json([{"spec": s.model_dump(mode="json"), "facts": f} for s, f in rows])
            return
        table = Table("name", "address", "os", "cpus", "ram", "gpus", "vllm", "peft", "torch",
                      "cuda (driver / torch)", "probed")
        for spec, facts in rows:
            assert isinstance(spec, HostSpec)
            gpus = facts.get("gpus") or []
            cells = (
                spec.name,
                "local" if spec.local else f"{spec.user or ''}@{spec.address}:{spec.port}",
                facts.get("os", "?"),
                facts.get("cpu_count", "?"),
                gib(facts.get("ram_total_bytes")),
                ", ".join(g["name"] for g in gpus) or "none",
                *((facts.get("packages") or {}).get(p) or "-" for p in ("vllm", "peft", "torch")),
                cuda_cell(facts),
                facts.get("observed_at", "never"),
            )
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "hosts", "`llmops host add NAME --local` (this machine) or --address A")


@host_group.command("show")
@click.argument("name", shell_complete=names_of("host"))
@json_option
def host_show(name: str, as_json: bool) -> None:
    """A host's spec and its last probe (exit 2 when there is no such host)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "host", name, as_json)
        facts = engine.lab.journal.observed("host", name) or {}
        processes = process_rows(engine, name)
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), "facts": facts,
                       "processes": processes})
            return
        for key, value in spec.model_dump().items():
            field(key, value)
        field("last probe", facts.get("observed_at", "never"))
        command_start(facts)
        if isinstance(processes, str):
            field("processes", processes)
        for p in processes if isinstance(processes, list) else []:
            owner = p["claimed_by"] or ("claimed by no spec" if p["state"] == "running" else "-")
            field(f"process {p['name']}", f"{p['state']}, pid {p['pid']}, {owner}")


def command_start(facts: dict[str, Any]) -> None:
    """What a command costs to start there, and the slow-shell note when it is slow."""
    if facts.get("command_start_s") is not None:
        field("command start", f"{facts['command_start_s']:.2f}s")
    if facts.get("command_start_note"):
        field("slow start", facts["command_start_note"])


def process_rows(engine: Engine, name: str) -> list[dict[str, Any]] | str:
    """llmops's processes on the host with what claims each (asked now), or why not."""
    from llmops.rollback.operate import TransportError

    try:
        found = engine.host_processes(name)
    except TransportError as exc:
        return f"unreachable: {exc}"
    return [{"name": p.name, "state": p.state, "pid": p.pid, "started_at": p.started_at,
             "claimed_by": who} for p, who in found]


@host_group.command("probe")
@click.argument("name", shell_complete=names_of("host"))
@json_option
def host_probe(name: str, as_json: bool) -> None:
    """Connect and probe a host now (changes no desired state; --read-only records nothing)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "host", name, as_json)
        assert isinstance(spec, HostSpec)
        facts = engine.probe(spec, record=not settings().read_only)
        if as_json:
            emit_json(facts)
            return
        for key in ("os", "kernel", "arch", "cpu_model", "cpu_count", "python_version", "workdir"):
            field(key, facts.get(key))
        field("ram", gib(facts.get("ram_total_bytes")))
        field("disk free", gib(facts.get("disk_free_bytes")))
        pkgs = facts.get("packages") or {}
        field("packages", ", ".join(f"{k} {v or '-'}" for k, v in pkgs.items()))
        for g in facts.get("gpus") or []:
            field(
                f"gpu {g['index']}",
                f"{g['name']} {gib(g['memory_used_bytes'])} / {gib(g['memory_total_bytes'])}"
                f" used, {g['utilization_percent']}% busy",
            )
        if facts.get("gpu_note"):
            field("gpus", facts["gpu_note"])
        command_start(facts)
