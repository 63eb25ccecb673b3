"""The Engine's doors for gateways: a prompt through one, changing nothing (the console and
the CLI may not import a kind's package; they reach it through the Engine); and the
followers of an action: resources whose spec does not change but which must be reconciled in
the same action because a dependency they read moved (a gateway routing to a server whose
port changes), so one action, and one rollback, covers both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from llmops.ops.kinds.base import Ref, Spec
from llmops.ops.kinds.gateway.kind import GatewayKind
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.rollback.changes import Change
from llmops.rollback.kinds import KINDS

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.rollback.lab import Lab


@runtime_checkable
class Follows(Protocol):
    """A kind whose resources read a dependency's spec into their own state (the gateway's
    config holds its servers' addresses): told a dependency changes, it says whether the
    resource must be reconciled in the same action."""

    def follows(self, spec: Spec, dep: Ref, before: Spec | None, after: Spec | None) -> bool: ...


def followers(specs: dict[Ref, Spec], changes: list[Change],
              before: dict[Ref, Spec | None]) -> list[Change]:
    """(pure) Unchanged resources to reconcile with `changes`: each desired resource not
    changed itself whose kind follows one of its changed dependencies (`before`: that
    dependency's spec before the action). Their Change carries their spec as it is."""
    changed = {c.ref: c for c in changes}
    extra = []
    for ref, spec in specs.items():
        kind = KINDS[ref[0]]
        if ref in changed or not isinstance(kind, Follows):
            continue
        deps = set(kind.depends_on(spec).values()) & set(changed)
        if any(kind.follows(spec, dep, before.get(dep), changed[dep].spec) for dep in deps):
            extra.append(Change(ref[0], ref[1], spec))
    return extra


class Gateways:
    """A prompt through a gateway: the answer, the server that gave it, cost, cache and
    fallbacks; the followers of an action (a mixin of the Engine)."""

    hosts: HostPool
    lab: Lab

    def gateway_try(self, spec: GatewaySpec, model: str, prompt: str,
                    max_tokens: int = 32) -> dict[str, Any]:
        kind = KINDS["gateway"]
        assert isinstance(kind, GatewayKind)
        return kind.try_prompt(spec, self.hosts, model, prompt, max_tokens)

    def with_followers(self, changes: list[Change]) -> list[Change]:
        """`changes` and the resources that follow them (see `followers`), read from the lab
        as it is before the action is written: called by `Engine.act` under the lab lock."""
        specs = self.lab.specs(None)
        before = {c.ref: specs.get(c.ref) for c in changes}
        return [*changes, *followers(specs, changes, before)]
