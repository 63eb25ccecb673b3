"""The registry through which the engine finds resource kinds by name or folder."""

from __future__ import annotations

from llmops.ops.kinds.adapter import AdapterKind
from llmops.ops.kinds.base import Context, Kind, Ref, Spec, SpecError
from llmops.ops.kinds.cluster import ClusterKind
from llmops.ops.kinds.env import EnvKind
from llmops.ops.kinds.gateway import GatewayKind
from llmops.ops.kinds.host import HostKind
from llmops.ops.kinds.index import IndexKind
from llmops.ops.kinds.run import RunKind
from llmops.ops.kinds.server import ServerKind

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (HostKind(), ServerKind(), RunKind(), AdapterKind(), IndexKind(), EnvKind(),
              GatewayKind(), ClusterKind())
}
"""Every kind the lab knows; adding a kind is one line here."""


def kind_of(spec: Spec) -> Kind:
    """The kind whose spec model this is (each kind has its own)."""
    for k in KINDS.values():
        if isinstance(spec, k.Spec):
            return k
    raise KeyError(type(spec).__name__)


def kind_for_folder(folder: str) -> Kind:
    for k in KINDS.values():
        if k.folder == folder:
            return k
    raise KeyError(folder)


def admit_dependencies(kind: Kind, ref: Ref, spec: Spec | None, context: Context) -> None:
    """A spec's dependencies must be in the lab; a removal must leave nobody without one."""
    if spec is not None:
        for field, (dep_kind, dep_name) in kind.depends_on(spec).items():
            if context.spec(dep_kind, dep_name) is None:
                raise SpecError(
                    field,
                    f"there is no {dep_kind} named {dep_name}",
                    f"add it first (see `llmops {dep_kind} --help`)",
                )
        return
    users = sorted(
        f"{other_ref[0]} {other_ref[1]}"
        for other_ref, other in context.desired.items()
        if ref in KINDS[other_ref[0]].depends_on(other).values()
    )
    if users:
        raise SpecError(
            ref[0], f"{ref[1]} is still used by {', '.join(users)}", "remove or move those first"
        )
