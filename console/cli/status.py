"""`llmops status --json`: per server latency, throughput, cost, eval and verdicts (issue 12)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
"""Top-level commands this module adds to `llmops`."""
SERVER_COMMANDS: list[click.Command] = []
"""Commands this module adds to `llmops server`."""
