"""The run kind's package (LoRA / QLoRA fine-tuning); `kind.py` says what each module holds."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.ops.kinds.run.kind import RunKind
    from llmops.ops.kinds.run.plan import plan_run
    from llmops.ops.kinds.run.spec import RunSpec

__all__ = ["RunKind", "RunSpec", "plan_run"]

_WHERE = {"RunKind": "kind", "plan_run": "plan", "RunSpec": "spec"}


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: importing its `spec` (the CLI's options,
    the console's forms) does not import the kind's apply and its SSH and HTTP libraries."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
