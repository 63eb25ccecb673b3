"""The env kind's package (a host's Python environment, pinned and rollbackable); `kind.py`
says what each module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.env.kind import EnvKind
    from llmops.ops.kinds.env.plan import plan_env
    from llmops.ops.kinds.env.spec import EnvSpec

__all__ = ["EnvKind", "EnvSpec", "plan_env"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "EnvKind": "kind",
    "plan_env": "plan",
    "EnvSpec": "spec",
})
