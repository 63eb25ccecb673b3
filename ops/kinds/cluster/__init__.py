"""The cluster kind's package (a Ray cluster over lab hosts, for vLLM sharded across them);
`kind.py` says what each module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.cluster.kind import ClusterKind
    from llmops.ops.kinds.cluster.plan import plan_cluster
    from llmops.ops.kinds.cluster.spec import ClusterSpec

__all__ = ["ClusterKind", "ClusterSpec", "plan_cluster"]

_WHERE = {"ClusterKind": "kind", "plan_cluster": "plan", "ClusterSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
