"""The index kind's package (Weaviate collections for RAG); `kind.py` says what each module
holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.index.kind import IndexKind
    from llmops.ops.kinds.index.plan import plan_index
    from llmops.ops.kinds.index.spec import IndexSpec

__all__ = ["IndexKind", "IndexSpec", "plan_index"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "IndexKind": "kind",
    "plan_index": "plan",
    "IndexSpec": "spec",
})
