"""The adapter kind's package (LoRA adapters hot-loaded into vLLM); `kind.py` says what each
module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.adapter.kind import AdapterKind
    from llmops.ops.kinds.adapter.plan import plan_adapter
    from llmops.ops.kinds.adapter.spec import AdapterSpec

__all__ = ["AdapterKind", "AdapterSpec", "plan_adapter"]

_WHERE = {"AdapterKind": "kind", "plan_adapter": "plan", "AdapterSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
