"""Server eval (quality beside speed) commands: `llmops server eval` (issue 12)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
