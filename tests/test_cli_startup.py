"""The `llmops` script's own CPU: Python's garbage collector is held off while a command starts
(its imports build ~10^5 objects and no garbage) and what is alive at exit is frozen, so the
interpreter's exit does not collect it all again; a command that runs on (an action, `alert
watch`, the console) collects again once started. Structural facts read from the real script
in its own process (benchmarks/cli_readonly.py measures what they save)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from labtools import llmops

PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("gc", gc.isenabled(), gc.get_freeze_count(), file=sys.stderr))
sys.argv[0] = "llmops"
from llmops.console.cli import main
main()
"""
"""The script's entry point, with a line at exit (after main returned, before the interpreter
tears down): the collector on or off, and how many objects are frozen out of its way."""


def script(*argv: str) -> tuple[subprocess.CompletedProcess[str], bool, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=120)
    words = [line for line in done.stderr.splitlines() if line.startswith("gc ")][-1].split()
    return done, words[1] == "True", int(words[2])


def test_the_collector_waits_for_the_start_and_skips_the_exit(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "w"))
    done, enabled, frozen = script("--lab", str(lab), "host", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert [h["spec"]["name"] for h in json.loads(done.stdout)] == ["local"]
    assert enabled  # a command on the lab collects again once started (it may run for hours)
    assert frozen > 10_000, frozen  # the start's objects, out of every later collection's way
    done, enabled, frozen = script("--help")
    assert done.returncode == 0 and "Usage:" in done.stdout
    assert not enabled and frozen > 1_000  # a quick one never paid for a collection
