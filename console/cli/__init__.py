"""The `llmops` command: every console action is also a command (`--json` for scripts)."""

from __future__ import annotations

from pathlib import Path

import click

from llmops.console.cli import alerts, audit, drill, policy, quality, status
from llmops.console.cli.adapters import adapter_group
from llmops.console.cli.clusters import cluster_group
from llmops.console.cli.common import (
    EXIT_BAD_INPUT,
    Settings,
    emit_json,
    esc,
    fail,
    json_option,
    log_to_file,
    out,
    refuse_if_read_only,
)
from llmops.console.cli.demo import demo
from llmops.console.cli.envs import env_group
from llmops.console.cli.gateways import gateway_group
from llmops.console.cli.history import apply, history, plan, rollback
from llmops.console.cli.hosts import host_group
from llmops.console.cli.indexes import index_group
from llmops.console.cli.runs import run_group
from llmops.console.cli.servers import server_group
from llmops.rollback.lab import Lab, LabMissing, default_lab_path, is_lab


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--lab",
    "lab_path",
    type=click.Path(path_type=Path),
    envvar="LLMOPS_LAB",
    help="The lab folder (default: the platform data dir; env LLMOPS_LAB).",
)
@click.option("--read-only", is_flag=True, help="Refuse everything that would change the lab.")
@click.option(
    "--lock-wait",
    type=float,
    default=5.0,
    envvar="LLMOPS_LOCK_WAIT",
    show_default=True,
    help="Seconds to wait for another action on the lab to finish.",
)
@click.pass_context
def cli(ctx: click.Context, lab_path: Path | None, read_only: bool, lock_wait: float) -> None:
    """llmops: run vLLM servers, LoRA runs and Weaviate indexes on your GPU hosts; every
    change is an action in git and SQLite, and any action rolls back with one key.

    Exit codes: 0 done, 1 the action failed (and was reverted), 2 bad input (nothing
    written), 3 the lab is busy with another action."""
    log_to_file()
    ctx.obj = Settings(lab_path, read_only, lock_wait)
    if ctx.invoked_subcommand is None:
        from llmops.console.app import run_console

        try:
            path = ctx.obj.checked_path(create=True)
        except LabMissing as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        run_console(path, read_only=read_only)


@click.command("init")
@click.option(
    "--lab", "lab_path", type=click.Path(path_type=Path), help="Where (as the global --lab)."
)
@json_option
@click.pass_obj
def init(settings: Settings, lab_path: Path | None, as_json: bool) -> None:
    """Create a lab: a git repo for desired state and its journal (exit 0 if it exists)."""
    refuse_if_read_only("init")
    path = lab_path or settings.lab_path or default_lab_path()
    created = not is_lab(path)
    if created and path.exists() and (not path.is_dir() or any(path.iterdir())):
        fail(f"{path} exists and is not a lab: pick a new or empty folder", as_json=as_json)
    if created:
        Lab(path).close()
    if as_json:
        emit_json({"ok": True, "lab": str(path), "created": created})
    else:
        out.print(f"created the lab at {esc(path)}" if created else f"{esc(path)} is a lab already")


for command in (init, host_group, server_group, run_group, adapter_group, index_group, history,
                rollback, plan, apply, demo, env_group, gateway_group, cluster_group):
    cli.add_command(command)
for module in (alerts, audit, drill, policy, quality, status):
    for command in module.COMMANDS:
        cli.add_command(command)
    for command in module.SERVER_COMMANDS:
        server_group.add_command(command)


def main() -> None:
    cli()
