"""The registry through which the engine finds resource kinds by name or folder."""

from __future__ import annotations

from llmops.ops.kinds.base import Kind
from llmops.ops.kinds.host import HostKind
from llmops.ops.kinds.server import ServerKind

KINDS: dict[str, Kind] = {k.name: k for k in (HostKind(), ServerKind())}
"""Every kind the lab knows; adding a kind is one line here."""


def kind_for_folder(folder: str) -> Kind:
    for k in KINDS.values():
        if k.folder == folder:
            return k
    raise KeyError(folder)


def ordered(refs: list[tuple[str, str]], removing: bool = False) -> list[tuple[str, str]]:
    """Hosts before what runs on them when creating; after, when removing."""
    return sorted(refs, key=lambda r: KINDS[r[0]].order, reverse=removing)
