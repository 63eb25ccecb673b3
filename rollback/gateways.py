"""The Engine's door for gateways: a prompt through one, changing nothing (the console and
the CLI may not import a kind's package; they reach it through the Engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.gateway.kind import GatewayKind
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.rollback.kinds import KINDS

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class Gateways:
    """A prompt through a gateway: the answer, the server that gave it, cost, cache and
    fallbacks (a mixin of the Engine)."""

    hosts: HostPool

    def gateway_try(self, spec: GatewaySpec, model: str, prompt: str,
                    max_tokens: int = 32) -> dict[str, Any]:
        kind = KINDS["gateway"]
        assert isinstance(kind, GatewayKind)
        return kind.try_prompt(spec, self.hosts, model, prompt, max_tokens)
