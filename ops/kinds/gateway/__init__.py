"""The gateway kind's package (a LiteLLM proxy in front of lab servers); `kind.py` says what
each module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.gateway.kind import GatewayKind
    from llmops.ops.kinds.gateway.plan import plan_gateway
    from llmops.ops.kinds.gateway.spec import GatewaySpec

__all__ = ["GatewayKind", "GatewaySpec", "plan_gateway"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "GatewayKind": "kind",
    "plan_gateway": "plan",
    "GatewaySpec": "spec",
})
