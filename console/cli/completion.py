"""Shell completion of resource names (click completes the commands and options itself).

Enable it with `eval "$(_LLMOPS_COMPLETE=bash_source llmops)"` (zsh_source, fish_source).
Completion reads file names in the lab's folder only: it must be fast and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def lab_path_of(ctx: click.Context) -> Path:
    """The lab the command line names (--lab or LLMOPS_LAB), else the default one."""
    from llmops.rollback.lab import default_lab_path

    given = ctx.find_root().params.get("lab_path")
    return Path(given) if given else default_lab_path()


def names_of(kind: str) -> Completer:
    """Complete the names of `kind`'s resources in the lab."""

    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        from llmops.rollback.lab import is_lab, names_in

        path = lab_path_of(ctx)
        if not is_lab(path):
            return []
        return [CompletionItem(n) for n in names_in(path, kind) if n.startswith(incomplete)]

    return complete


def complete_refs(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Complete KIND/NAME for --last and --last-good."""
    from llmops.rollback.kinds import KINDS
    from llmops.rollback.lab import is_lab, names_in

    path = lab_path_of(ctx)
    if not is_lab(path):
        return []
    refs = [f"{kind}/{name}" for kind in KINDS for name in names_in(path, kind)]
    return [CompletionItem(r) for r in refs if r.startswith(incomplete)]


def logs_command(kind: str, doc: str) -> click.Command:
    """`llmops KIND logs NAME [-n N] [--json]`: the same command for every kind with logs."""
    from llmops.console.cli.common import emit_json, engine_for_cli, existing_spec, json_option

    @click.command("logs", help=doc)
    @click.argument("name", shell_complete=names_of(kind))
    @click.option("-n", "--lines", type=int, default=100, show_default=True)
    @json_option
    def logs(name: str, lines: int, as_json: bool) -> None:
        with engine_for_cli(as_json) as engine:
            found = engine.logs(existing_spec(engine, kind, name, as_json), lines)
            if as_json:
                emit_json(found)
            else:
                for line in found:
                    click.echo(line)

    return logs
