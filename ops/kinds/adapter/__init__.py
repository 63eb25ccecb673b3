"""The adapter kind's package (LoRA adapters hot-loaded into vLLM); `kind.py` says what each
module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.adapter.kind import AdapterKind
    from llmops.ops.kinds.adapter.plan import plan_adapter
    from llmops.ops.kinds.adapter.spec import AdapterSpec

__all__ = ["AdapterKind", "AdapterSpec", "plan_adapter"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "AdapterKind": "kind",
    "plan_adapter": "plan",
    "AdapterSpec": "spec",
})
