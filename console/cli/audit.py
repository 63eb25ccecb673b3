"""The audit trail: `llmops audit --json` (issue 13)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
