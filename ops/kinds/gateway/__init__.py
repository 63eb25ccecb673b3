"""The gateway kind's package (a LiteLLM proxy in front of lab servers); `kind.py` says what
each module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.gateway.kind import GatewayKind
    from llmops.ops.kinds.gateway.plan import plan_gateway
    from llmops.ops.kinds.gateway.spec import GatewaySpec

__all__ = ["GatewayKind", "GatewaySpec", "plan_gateway"]

_WHERE = {"GatewayKind": "kind", "plan_gateway": "plan", "GatewaySpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
