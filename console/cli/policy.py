"""`llmops policy show`: the operator's policy file as it applies now, and what each host's
jobs ask for against it (issue 13 item 7)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from llmops.console.cli.common import emit_json, engine_for_cli, esc, json_option, out


@click.group("policy")
def policy_group() -> None:
    """The lab's policy.toml: quotas, allowed endpoints, data folders and model ids."""


@policy_group.command("show")
@json_option
def show(as_json: bool) -> None:
    """Every rule with its value (defaults where the file says nothing), and per host what
    its jobs ask for."""
    from llmops.rollback.policy import host_use, load_policy, policy_path

    with engine_for_cli(as_json) as engine:
        path = policy_path(engine.lab.path)
        rules = load_policy(engine.lab.path)
        hosts = host_use(engine.context())
        usage: dict[str, Any] = {
            name: {
                "gpus": use.gpu_count(),
                "gpus_total": use.gpus_total,
                "ram_gib": round(use.ram_gib(), 3),
                "ram_total_gib": None if use.ram_total_gib is None else round(use.ram_total_gib, 3),
                "jobs": {
                    ref: {"gpu_ids": r.gpu_ids, "ram_gib": r.ram_gib, "idle": r.idle}
                    for ref, r in use.jobs.items()
                },
            }
            for name, use in hosts.items()
        }
        if as_json:
            emit_json({"file": str(path), "exists": path.is_file(),
                       "policy": rules.model_dump(mode="json"), "hosts": usage})
            return
        out.print(f"{esc(path)}" + ("" if path.is_file() else " (absent: the defaults apply)"))
        table = Table("rule", "value")
        for section, values in rules.model_dump(mode="json").items():
            for key, value in values.items():
                shown = "any" if value is None else value
                table.add_row(f"{section}.{key}", esc(shown))
        out.print(table)
        if usage:
            per_host = Table("host", "GPUs", "RAM GiB asked", "jobs")
            for name, row in usage.items():
                per_host.add_row(
                    esc(name),
                    f"{row['gpus']} / {'?' if row['gpus_total'] is None else row['gpus_total']}",
                    f"{row['ram_gib']:g} / {row['ram_total_gib'] or '?'}",
                    esc(", ".join(row["jobs"])),
                )
            out.print(per_host)


COMMANDS: list[click.Command] = [policy_group]
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
