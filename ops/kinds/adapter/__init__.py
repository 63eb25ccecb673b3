"""The adapter kind's package (LoRA adapters hot-loaded into vLLM); `kind.py` says what each
module holds."""

from llmops.ops.kinds.adapter.kind import AdapterKind
from llmops.ops.kinds.adapter.plan import plan_adapter
from llmops.ops.kinds.adapter.spec import AdapterSpec

__all__ = ["AdapterKind", "AdapterSpec", "plan_adapter"]
