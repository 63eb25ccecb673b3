"""The index kind's package (Weaviate collections for RAG); `kind.py` says what each module
holds."""

from llmops.ops.kinds.index.kind import IndexKind
from llmops.ops.kinds.index.plan import plan_index
from llmops.ops.kinds.index.spec import IndexSpec

__all__ = ["IndexKind", "IndexSpec", "plan_index"]
