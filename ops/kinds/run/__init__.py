"""The run kind's package (LoRA / QLoRA fine-tuning); `kind.py` says what each module holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.ops.kinds.lazy import lazy_exports

if TYPE_CHECKING:
    from llmops.ops.kinds.run.kind import RunKind
    from llmops.ops.kinds.run.plan import plan_run
    from llmops.ops.kinds.run.spec import RunSpec

__all__ = ["RunKind", "RunSpec", "plan_run"]

__getattr__ = lazy_exports(__name__, {  # name: the module defining it
    "RunKind": "kind",
    "plan_run": "plan",
    "RunSpec": "spec",
})
