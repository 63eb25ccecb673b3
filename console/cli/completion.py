"""Shell completion of resource names (click completes the commands and options itself).

Enable it with `eval "$(_LLMOPS_COMPLETE=bash_source llmops)"` (zsh_source, fish_source).
Completion reads file names in the lab's folder only: it must be fast and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import default_lab_path, is_lab, names_in

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def lab_path_of(ctx: click.Context) -> Path:
    """The lab the command line names (--lab or LLMOPS_LAB), else the default one."""
    given = ctx.find_root().params.get("lab_path")
    return Path(given) if given else default_lab_path()


def names_of(kind: str) -> Completer:
    """Complete the names of `kind`'s resources in the lab."""

    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        path = lab_path_of(ctx)
        if not is_lab(path):
            return []
        return [CompletionItem(n) for n in names_in(path, kind) if n.startswith(incomplete)]

    return complete


def complete_refs(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Complete KIND/NAME for --last and --last-good."""
    path = lab_path_of(ctx)
    if not is_lab(path):
        return []
    refs = [f"{kind}/{name}" for kind in KINDS for name in names_in(path, kind)]
    return [CompletionItem(r) for r in refs if r.startswith(incomplete)]
