"""The server kind's package (vLLM); `kind.py` says what each module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.server.kind import ServerKind
    from llmops.ops.kinds.server.plan import plan_server
    from llmops.ops.kinds.server.spec import COLOURS, ServerSpec

__all__ = ["COLOURS", "ServerKind", "ServerSpec", "plan_server"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "ServerKind": "kind",
    "plan_server": "plan",
    "COLOURS": "spec",
    "ServerSpec": "spec",
})
