"""The cluster kind's package (a Ray cluster over lab hosts, for vLLM sharded across them);
`kind.py` says what each module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.cluster.kind import ClusterKind
    from llmops.ops.kinds.cluster.plan import plan_cluster
    from llmops.ops.kinds.cluster.spec import ClusterSpec

__all__ = ["ClusterKind", "ClusterSpec", "plan_cluster"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "ClusterKind": "kind",
    "plan_cluster": "plan",
    "ClusterSpec": "spec",
})
