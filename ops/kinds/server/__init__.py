"""The server kind's package (vLLM); `kind.py` says what each module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.server.kind import ServerKind
    from llmops.ops.kinds.server.plan import plan_server
    from llmops.ops.kinds.server.spec import COLOURS, ServerSpec

__all__ = ["COLOURS", "ServerKind", "ServerSpec", "plan_server"]

_WHERE = {"ServerKind": "kind", "plan_server": "plan", "COLOURS": "spec", "ServerSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
