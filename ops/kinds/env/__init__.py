"""The env kind's package (a host's Python environment, pinned and rollbackable); `kind.py`
says what each module holds."""

from llmops.ops.kinds.env.kind import EnvKind
from llmops.ops.kinds.env.plan import plan_env
from llmops.ops.kinds.env.spec import EnvSpec

__all__ = ["EnvKind", "EnvSpec", "plan_env"]
