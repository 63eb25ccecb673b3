"""The cluster kind's package (a Ray cluster over lab hosts, for vLLM sharded across them);
`kind.py` says what each module holds."""

from llmops.ops.kinds.cluster.kind import ClusterKind
from llmops.ops.kinds.cluster.plan import plan_cluster
from llmops.ops.kinds.cluster.spec import ClusterSpec

__all__ = ["ClusterKind", "ClusterSpec", "plan_cluster"]
