"""Named points in the engine where a test can kill the acting process (issue 13, item 1).

FOR TESTS ONLY. `fault_point(name)` is called at each step of an action (after the journal's
`started` row, after the commit, after each reconcile step, before `succeeded`, in the revert
path). When the environment variable `LLMOPS_FAULT_AT` names that point, the process sends
itself SIGKILL there: no handler, no cleanup, no flush, exactly what the OOM killer or a
closed laptop does. Unset (always, outside tests), a point is one dict lookup: no cost.

`LLMOPS_FAULT_AT=step:2` kills after the second plan step of the action has been journalled;
`LLMOPS_FAULT_AT=step:2` with `LLMOPS_FAULT_REF=server/s1` counts only that resource's steps.
"""

from __future__ import annotations

import os
import signal

ENV = "LLMOPS_FAULT_AT"
POINTS = (
    "after-started",  # the write-ahead row is in the journal, no file written yet
    "after-write",  # the desired files are written, not yet committed
    "after-commit",  # the commit exists, `committed` not yet journalled
    "after-committed",  # `committed` journalled, nothing reconciled
    "step:N",  # after the Nth reconcile step's row (mid-reconcile)
    "before-checks",  # every step done, the checklist not yet run
    "before-succeeded",  # checks journalled, the outcome row not yet written
    "revert-after-commit",  # a failed action's revert commit made, nothing reverted on hosts
    "before-failed",  # the revert done and checked, the `failed` row not yet written
)
"""Every point the engine offers (documentation and the tests' parametrisation)."""

_steps = 0


def fault_point(name: str, ref: str | None = None) -> None:
    """Die here by SIGKILL when the test asked for this point (a no-op otherwise)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    global _steps
    if name == "step":
        only = os.environ.get("LLMOPS_FAULT_REF")
        if only and ref != only:
            return
        _steps += 1
        name = f"step:{_steps}"
    if name == wanted:
        os.kill(os.getpid(), signal.SIGKILL)
