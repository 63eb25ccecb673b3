"""How long the `llmops` command takes to start, against the interpreter's own start.

    .venv/bin/python benchmarks/cli_start.py [--repeats 10]

An operator scripting the CLI pays its start on every call, and shell completion runs the CLI
on every TAB. One run times, side by side in rounds (the order rotating each round, so a
burst of load elsewhere hits each the same): `python -c pass` (the baseline: the interpreter
and site-packages), `llmops --help` (click and the command table only), `llmops host --help`
(a group: its module, rich and its kind's spec), `llmops host list --json` on an empty lab (a
real command: the lab, the engine and every kind imported) and, for scale, `python -c
"import llmops.console.cli; load_all()"` (every command imported, what each call cost before
the commands loaded lazily). Each is a fresh process, as a shell
starts it. Prints each one's wall seconds (median, min, max) and per round the CLI's seconds
above that round's baseline. Target: `--help` at most 0.5 s above the baseline (median);
exit 1 when missed. On a shared box the spread is wide: read it before the verdict.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.3f} s (min {min(values):.3f}, "
            f"max {max(values):.3f}, n={len(values)})")


def llmops_argv() -> list[str]:
    """The console script beside this interpreter (what a shell runs), else `python -m`."""
    script = Path(sys.executable).parent / "llmops"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmops.console.cli"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="Rounds (each runs every case).")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llmops-clistart-"))
    lab = root / "lab"
    env = {**os.environ, "XDG_STATE_HOME": str(root / "state"), "LLMOPS_LAB": str(lab)}
    cli = llmops_argv()
    subprocess.run([*cli, "init"], check=True, capture_output=True, env=env)
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "llmops --help": [*cli, "--help"],
        "llmops host --help": [*cli, "host", "--help"],
        "llmops host list --json": [*cli, "host", "list", "--json"],
        "every command imported": [
            sys.executable, "-c", "import llmops.console.cli as c; c.load_all()"],
    }
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.repeats} rounds; "
          f"{' '.join(cli)}", flush=True)
    for argv in cases.values():  # warm the page cache and .pyc files: not counted
        timed(argv, env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for i in range(args.repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            times[name].append(timed(cases[name], env))
    base = times["python -c pass"]
    for name, values in times.items():
        print(f"{name:<26} {spread(values)}")
    above: dict[str, list[float]] = {}
    for name in names[1:]:
        above[name] = [t - b for t, b in zip(times[name], base, strict=True)]
        print(f"{name:<26} above the baseline: {spread(above[name])}")
    eager = statistics.median(times["every command imported"])
    helped = statistics.median(times["llmops --help"])
    listed = statistics.median(times["llmops host list --json"])
    print(f"--help takes {helped / eager:.2f}x the eager import's time; host list "
          f"{listed / eager:.2f}x")
    got = statistics.median(above["llmops --help"])
    verdict = "met" if got <= TARGET_S else "MISSED"
    print(f"target: --help <= {TARGET_S} s above `python -c pass`: {got:.3f} s, {verdict}")
    return 0 if got <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
