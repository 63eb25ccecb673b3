"""The gateway kind's package (a LiteLLM proxy in front of lab servers); `kind.py` says what
each module holds."""

from llmops.ops.kinds.gateway.kind import GatewayKind
from llmops.ops.kinds.gateway.plan import plan_gateway
from llmops.ops.kinds.gateway.spec import GatewaySpec

__all__ = ["GatewayKind", "GatewaySpec", "plan_gateway"]
