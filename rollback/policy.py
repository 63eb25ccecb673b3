"""The operator's policy file (`policy.toml` in the lab): quotas, allowed endpoints, data dirs
and model ids, checked at admission before anything is written (issue 13)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmops.ops.kinds.base import Context
    from llmops.rollback.changes import Change
    from llmops.rollback.lab import Lab


def check_policy(lab: Lab, changes: list[Change], context: Context) -> None:
    """Raise SpecError naming the rule and the file to change when a change breaks policy."""
