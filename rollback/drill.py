"""Rollback readiness and drills: can the before-state be restored, and how long does it take
(issue 13). A mixin of the Engine."""

from __future__ import annotations


class Drills:
    """Readiness checks and `llmops drill KIND/NAME` (a mixin of the Engine)."""
