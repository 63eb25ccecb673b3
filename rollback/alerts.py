"""Alerts: target breaches seen by the telemetry poll, with hysteresis, journalled as events
and handed to the operator's command (issue 12). A mixin of the Engine."""

from __future__ import annotations


class Alerts:
    """Alert state and delivery (a mixin of the Engine)."""
