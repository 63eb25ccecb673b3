"""What a read-only command costs, command by command, and what the script's start saves.

    .venv/bin/python benchmarks/cli_readonly.py [--repeats 5]

Read-only commands (`host/server/run/adapter/index/env/gateway list`, `status`, `history`)
took 6-18 s each on a box at load 10: each is ~1 s of CPU (the interpreter's imports of the
lab, the engine and every kind; the lab's files; a host call per resource to observe it), and
on 2 cores at load 10 a CPU second is several seconds of wall. One run makes a lab with host
`local`, a server and a run written into the lab by hand (never started: each list still asks
the host for their state) and times, side by side in rounds (the order rotating, each a fresh
process as a shell starts it):

- `script`: the `llmops` script (its `main`: the garbage collector held off while the command
  starts, what is alive at exit frozen, so the exit does not collect it all again);
- `plain`: the same command through click without them (what `main` was before).

CPU is the user + system seconds of the process and the host calls it waited on (wall is
printed too, but on a shared box CPU is the figure to compare). Prints per command the median
(min-max) of each way, and the ratio script / plain of the medians with the rounds' spread;
then, once, how much of `server list`'s CPU is its imports alone. No target: the figures say
where the time goes (DESIGN.md). Under two minutes quiet; no host extra needed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = ("host list", "server list", "run list", "adapter list", "index list", "env list",
            "gateway list", "status", "history")
PLAIN = "import sys; sys.argv[0] = 'llmops'; from llmops.console.cli import cli; cli()"
SCRIPT = "import sys; sys.argv[0] = 'llmops'; from llmops.console.cli import main; main()"
IMPORTS = ("import llmops.console.cli.servers, llmops.rollback.engine, "
           "llmops.rollback.summaries")


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh process and the children it waited on."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def make_lab(root: Path, env: dict[str, str]) -> None:
    """Host `local`; server `s` and run `r` written by hand (a commit, no action: nothing
    starts, and each list observes them on the host)."""
    py = sys.executable
    subprocess.run([py, "-c", SCRIPT, "init"], check=True, capture_output=True, env=env)
    subprocess.run([py, "-c", SCRIPT, "host", "add", "local", "--local", "--python", py,
                    "--workdir", str(root / "work")], check=True, capture_output=True, env=env)
    lab = root / "lab"
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text('{"text": "hello"}\n')
    (lab / "servers").mkdir(exist_ok=True)
    (lab / "servers" / "s.toml").write_text(
        f'host = "local"\nmodel = "{root / "model"}"\nport = 18999\n')
    (lab / "runs").mkdir(exist_ok=True)
    (lab / "runs" / "r.toml").write_text(
        f'host = "local"\nbase = "{root / "model"}"\ndataset = "{root / "data"}/train.jsonl"\n'
        'state = "stopped"\n')
    for argv in (["add", "servers/s.toml", "runs/r.toml"], ["commit", "-qm", "hand edit"]):
        subprocess.run(["git", "-C", str(lab), *argv], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Rounds (each runs every case).")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llmops-clireadonly-"))
    env = {**os.environ, "XDG_STATE_HOME": str(root / "state"), "LLMOPS_LAB": str(root / "lab")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an operator's shell: .pyc files are kept
    make_lab(root, env)
    py = sys.executable
    cases = {(c, way): [py, "-c", code, *c.split()]
             for c in COMMANDS for way, code in (("script", SCRIPT), ("plain", PLAIN))}
    cases[("python -c pass", "script")] = [py, "-c", "pass"]
    cases[("imports of server list", "script")] = [py, "-c", IMPORTS]
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.repeats} rounds",
          flush=True)
    for argv in cases.values():  # warm the page cache and the .pyc files: not counted
        measured(argv, env)
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
    keys = list(cases)
    for i in range(args.repeats):
        for key in keys[i % len(keys):] + keys[:i % len(keys)]:
            c, w = measured(cases[key], env)
            cpu[key].append(c)
            wall[key].append(w)
    print(f"{'command':<16} {'script CPU s':>22} {'plain CPU s':>22} {'ratio (spread)':>20}"
          f" {'script wall s':>22}")
    for c in COMMANDS:
        s, p = cpu[(c, "script")], cpu[(c, "plain")]
        pairs = [a / b for a, b in zip(s, p, strict=True) if b]
        print(f"{c:<16} {spread(s):>22} {spread(p):>22} "
              f"{statistics.median(s) / statistics.median(p):>6.3f} "
              f"({min(pairs):.2f}-{max(pairs):.2f}) {spread(wall[(c, 'script')]):>22}")
    base = cpu[("python -c pass", "script")]
    imports = cpu[("imports of server list", "script")]
    listed = cpu[("server list", "plain")]
    print(f"python -c pass: {spread(base)} s CPU; the imports of server list alone: "
          f"{spread(imports)} s CPU, {statistics.median(imports) / statistics.median(listed):.0%}"
          f" of the plain command's")
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
