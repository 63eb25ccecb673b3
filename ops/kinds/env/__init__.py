"""The env kind's package (a host's Python environment, pinned and rollbackable); `kind.py`
says what each module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.env.kind import EnvKind
    from llmops.ops.kinds.env.plan import plan_env
    from llmops.ops.kinds.env.spec import EnvSpec

__all__ = ["EnvKind", "EnvSpec", "plan_env"]

_WHERE = {"EnvKind": "kind", "plan_env": "plan", "EnvSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
