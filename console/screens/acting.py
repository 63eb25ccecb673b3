"""Starting an action from the console: always in a thread worker, the verdict as a message."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from textual.dom import DOMNode
from textual.worker import Worker

from llmops.console.messages import ActionDone
from llmops.console.specs import problems_text
from llmops.ops.kinds.base import SpecError
from llmops.rollback.engine import ActionRefused, Change, Engine
from llmops.rollback.lab import LabFileError
from llmops.rollback.lock import LabBusy
from llmops.rollback.operate import TransportError

EXPECTED = (SpecError, ValidationError, ActionRefused, LabBusy, LabFileError, TransportError)


def error_text(exc: BaseException) -> str:
    """An operator-readable reason; pydantic errors as `field: problem`."""
    if isinstance(exc, ValidationError):
        return problems_text(exc)
    return str(exc) or type(exc).__name__


def start_action(node: DOMNode, engine: Engine, changes: list[Change], summary: str, *,
                 trust: Mapping[str, str] | None = None) -> Worker[None]:
    """Run `engine.act` in a thread worker; `node` receives `ActionDone`."""

    def act() -> None:
        try:
            show_readiness(node, engine, changes)
            record = engine.act(changes, summary, trust=trust)
        except EXPECTED as exc:
            node.post_message(ActionDone(summary, None, error_text(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - reported to the operator, never a crash
            node.post_message(ActionDone(summary, None, f"{type(exc).__name__}: {exc}"))
            return
        node.post_message(ActionDone(summary, record, None))

    return node.run_worker(act, thread=True, exclusive=False, exit_on_error=False,
                           group="action", name=summary, description=summary)


def show_readiness(node: DOMNode, engine: Engine, changes: list[Change]) -> None:
    """Worker side, before a change of what exists: could it be put back, and how long did
    that take before (the journal's p50 for the kind). A toast, not a refusal: the operator
    may be replacing a broken state."""
    for ready in engine.readiness_for(changes):
        expected = (f"expected ~{ready.expected_seconds:.0f}s (p50 of {ready.samples})"
                    if ready.expected_seconds is not None else "no rollback of this kind yet")
        title = f"rollback of {'/'.join(ready.ref)}: " + ("ready" if ready.ready else "BLOCKED")
        body = "\n".join([*(f"✗ {b}" for b in ready.blockers), expected])
        node.app.call_from_thread(node.app.notify, body, title=title, timeout=6,
                                  severity="information" if ready.ready else "warning")


def notify_done(node: DOMNode, message: ActionDone) -> None:
    """A toast with the verdict of an action the console started."""
    if message.error is not None:
        node.app.notify(message.error, title=f"{message.summary}: refused", severity="error",
                    timeout=10)
        return
    record = message.record
    assert record is not None
    ok = record.ok
    secs = f" in {record.seconds:.1f}s" if record.seconds is not None else ""
    body = f"action {record.id}: {record.display_status}{secs}"
    if record.error:
        body += f"\n{record.error}"
    unverified = [c for c in record.checks if c.phase == "revert" and not c.ok]
    if unverified:
        body += "\nafter the revert: " + "; ".join(
            f"{c.ref} {c.name}: {c.detail}" for c in unverified)
    node.app.notify(body, title=message.summary, severity="information" if ok else "error",
                timeout=6 if ok else 12)
