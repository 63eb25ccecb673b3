"""ctrl+z anywhere: preview a rollback (worker side), confirm it, then the live rollback screen.

History rolls back the selected action; a resource view rolls back the last undoable action
on the selected resource (the engine's `last_undoable`, also `llmops rollback --last`). Both
end in the same confirm dialog and RollbackScreen, so an operator sees one rollback, whichever
view they start from."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.dom import DOMNode

from llmops.console.messages import RollbackPreviewed
from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.rollback import RollbackScreen
from llmops.rollback.engine import Engine


def describe_change(kind: str, name: str, before: Any, now: Any) -> str:
    """What rolling back does to one resource, in words."""
    if before is None and now is not None:
        return f"{kind} {name}: removed (it did not exist before)"
    if before is not None and now is None:
        return f"{kind} {name}: restored (it was removed)"
    if before == now:
        return f"{kind} {name}: unchanged (already as before), re-checked"
    return f"{kind} {name}: changed back to its earlier spec"


def preview_message(engine: Engine, action_id: int) -> RollbackPreviewed:
    """Worker side: what rolling back `action_id` does, as the message the dialog wants."""
    try:
        preview = engine.preview_rollback(action_id)
        lines = [describe_change(c.kind, c.name, c.spec, preview.current.get(c.ref))
                 for c in preview.changes]
    except Exception as exc:  # noqa: BLE001 - shown to the operator
        return RollbackPreviewed(action_id, None, error_text(exc))
    return RollbackPreviewed(action_id, preview, None, lines)


def confirm_rollback(node: DOMNode, context: ViewContext, message: RollbackPreviewed) -> None:
    """Event loop side: the confirm dialog (times out to no), then the live rollback."""
    preview = message.preview
    if preview is None:
        node.app.notify(message.error or "", title=f"cannot roll back action {message.action_id}",
                    severity="error", timeout=10)
        return
    if preview.blockers:
        node.app.notify("; ".join(preview.blockers), title="cannot roll back now",
                    severity="error", timeout=10)
        return
    head = Text()
    head.append(f"action {preview.action.id}: {preview.action.summary}\n\n", style="bold")
    for line in message.changes:
        head.append(f"  • {line}\n")
    if preview.later_actions:
        head.append(f"  (later actions on the same resources: {preview.later_actions})\n")
    head.append(f"\nexpected time: about {preview.expected_seconds:.0f}s\n")
    parts: list[Any] = [head]
    if preview.diff.strip():
        parts.append(Syntax(preview.diff, "diff", theme="ansi_dark", word_wrap=True))
    target = preview.action

    def answered(yes: bool | None) -> None:
        if yes:
            node.app.push_screen(RollbackScreen(context, target))

    node.app.push_screen(ConfirmScreen(f"Roll back action {target.id}?", Group(*parts),
                                       yes="Roll back", timeout=30), answered)
