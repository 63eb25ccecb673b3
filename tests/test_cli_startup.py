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
import atexit, gc, os, sys, threading

def at_exit():
    try:
        os.waitpid(-1, os.WNOHANG)
        children = "some"
    except ChildProcessError:
        children = "none"
    threads = [t.name for t in threading.enumerate() if not t.daemon]
    print("gc", gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()), children,
          ",".join(threads), file=sys.stderr)

atexit.register(at_exit)
sys.argv[0] = "llmops"
from llmops.console.cli import main
main()
"""
"""The script's entry point, with a line at exit (after main returned, before the interpreter
tears down): the collector on or off, how many objects are frozen out of its way and how many
it would still walk, whether a child process is left to wait for, the threads it would join."""


def script(*argv: str) -> tuple[subprocess.CompletedProcess[str], bool, int]:
    done, words = at_exit(*argv)
    return done, words[1] == "True", int(words[2])


def at_exit(*argv: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.startswith("gc ")]
    assert lines, done.stderr
    return done, lines[-1].split()


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


def test_an_action_ends_the_command_when_it_ends(tmp_path: Path) -> None:
    """`server down` took 70 s at load 10 for a 12.5 s action (user4's walk): after its action
    the command waits on nothing (no child process, no thread but the main one) and the exit
    walks almost no objects (the collections of all the start's objects were a second of CPU
    at that load). The same path (`remove_resource`) as `host remove`."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "w"))
    for argv in (["host", "add", "h2", "--local", "--python", sys.executable, "--workdir",
                  str(tmp_path / "w2")], ["host", "remove", "h2"]):
        done, words = at_exit("--lab", str(lab), *argv)
        assert done.returncode == 0, done.stderr
        assert " succeeded in " in done.stdout, done.stdout
        frozen, walked, children, threads = int(words[2]), int(words[3]), words[4], words[5]
        assert children == "none" and threads == "MainThread", words
        assert walked < frozen / 4, words  # the exit's collection is a fraction of the start's
