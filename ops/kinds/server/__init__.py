"""The server kind's package (vLLM); `kind.py` says what each module holds."""

from llmops.ops.kinds.server.kind import ServerKind
from llmops.ops.kinds.server.plan import plan_server
from llmops.ops.kinds.server.spec import COLOURS, ServerSpec

__all__ = ["COLOURS", "ServerKind", "ServerSpec", "plan_server"]
