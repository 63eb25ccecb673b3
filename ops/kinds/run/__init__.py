"""The run kind's package (LoRA / QLoRA fine-tuning); `kind.py` says what each module holds."""

from llmops.ops.kinds.run.kind import RunKind
from llmops.ops.kinds.run.plan import plan_run
from llmops.ops.kinds.run.spec import RunSpec

__all__ = ["RunKind", "RunSpec", "plan_run"]
