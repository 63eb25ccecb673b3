"""The index kind's package (Weaviate collections for RAG); `kind.py` says what each module
holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.index.kind import IndexKind
    from llmops.ops.kinds.index.plan import plan_index
    from llmops.ops.kinds.index.spec import IndexSpec

__all__ = ["IndexKind", "IndexSpec", "plan_index"]

_WHERE = {"IndexKind": "kind", "plan_index": "plan", "IndexSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
