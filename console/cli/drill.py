"""Rollback drills and readiness: `llmops drill KIND/NAME` (issue 13)."""

from __future__ import annotations

import click

from llmops.console.cli import policy

COMMANDS: list[click.Command] = [*policy.COMMANDS]
"""Top-level commands this module adds to `llmops` (`policy` rides here until the lead
registers console/cli/policy.py in the CLI's module tuple; adding it twice is harmless)."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
