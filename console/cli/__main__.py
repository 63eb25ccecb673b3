"""`python -m llmops.console.cli` runs the CLI (used by tests and when no script is on PATH)."""

from llmops.console.cli import main

main()
