"""How reading the journal grows with it: 100 actions against 10,000, side by side.

    .venv/bin/python benchmarks/journal_growth.py [--small 100] [--large 10000] [--runs 5]

Two labs are built straight through the journal API (real actions would take hours): each
action is 8 rows (started with its specs, committed, 2 steps, 3 checks, succeeded), every
tenth a rollback of the one before. Then, on each lab, `--runs` times: `llmops history`
(the CLI in process), `llmops history --verify`, the console's History view from start to
its first rows (Textual's `run_test`), and the rollback preview of the newest action, the
two sizes taken in turn.
Targets (issue 9): each within 1.5x at the large journal of its time at the small one,
except `--verify`, which reads every row: it must stay linear (within 1.5x of the growth
in actions). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from llmops.console.app import LlmopsApp
from llmops.console.cli import cli
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.engine import Engine
from llmops.rollback.journal import Journal
from llmops.rollback.lab import Lab

SPEC = {"address": "10.0.0.1", "port": 22, "user": "ops", "python": "python3",
        "workdir": "~/.llmops", "key": "~/.ssh/id_ed25519", "cost_per_hour": 2.5}


def build(path: Path, actions: int) -> None:
    """A lab whose journal holds `actions` finished actions (8 rows each) on 20 hosts."""
    lab = Lab(path)
    head = lab.head()
    lab.close()
    journal = Journal(path / "lab.db")
    journal.db.execute("PRAGMA synchronous=OFF")  # built once, read many times
    for i in range(1, actions + 1):
        host = f"gpu-{i % 20}"
        rollback_of = i - 1 if i % 10 == 0 else None
        journal.append(i, "started", {
            "kind": "rollback" if rollback_of else "apply", "who": "bench@localhost",
            "summary": f"rollback of action {rollback_of}" if rollback_of else f"host {host}",
            "refs": [["host", host]], "before_commit": head, "rollback_of": rollback_of,
            "specs": {f"host/{host}": {**SPEC, "name": host}}})
        journal.append(i, "committed", {"commit": head})
        for verb in ("connect", "probe"):
            journal.append(i, "step", {"ref": f"host/{host}", "verb": verb, "detail": "",
                                       "phase": "apply", "ok": True, "seconds": 0.05})
        for check in ("reachable", "probe matches", "python runs"):
            journal.append(i, "check", {"ref": f"host/{host}", "name": check, "ok": True,
                                        "detail": "", "seconds": 0.01})
        journal.append(i, "succeeded", {"after_commit": head, "seconds": 0.4})
    journal.close()


def cli_run(path: Path, *args: str) -> float:
    t0 = time.perf_counter()
    done = CliRunner().invoke(cli, ["--lab", str(path), "history", *args])
    took = time.perf_counter() - t0
    if done.exit_code != 0:
        raise SystemExit(f"llmops history {' '.join(args)} on {path}: exit {done.exit_code}"
                         f"\n{done.output}")
    return took


async def first_paint(path: Path) -> float:
    """Console start to the History view showing its rows (all views load at start)."""
    app = LlmopsApp(path)
    t0 = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.main is None or not app.main.is_mounted:
            await pilot.pause(0.005)
        await pilot.press("6")
        table = app.main.view("history").query_one(ResourceTable)
        while table.row_count == 0:
            await pilot.pause(0.005)
        await pilot.pause()  # the frame with the rows
        took = time.perf_counter() - t0
        if app.context is not None:
            app.context.engine.close()
            app.context.lab.close()
    return took


def preview(path: Path) -> float:
    lab = Lab(path)
    engine = Engine(lab)
    try:
        newest = lab.journal.next_action_id() - 1
        t0 = time.perf_counter()
        engine.preview_rollback(newest)
        return time.perf_counter() - t0
    finally:
        engine.close()
        lab.close()


MEASURES: list[tuple[str, Callable[[Path], float], bool]] = [
    ("llmops history", lambda p: cli_run(p), False),
    ("llmops history --verify", lambda p: cli_run(p, "--verify"), True),
    ("History view, start to first rows", lambda p: asyncio.run(first_paint(p)), False),
    ("rollback preview (newest action)", preview, False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the labs here and keep them.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-journal-"))
    labs = {}
    for size in (args.small, args.large):
        labs[size] = root / f"lab-{size}"
        if not (labs[size] / "lab.db").exists():
            t0 = time.perf_counter()
            build(labs[size], size)
            print(f"built {size:,} actions ({size * 8:,} rows) in"
                  f" {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    growth = args.large / args.small
    cli_run(labs[args.small])  # imports and caches warm before anything is timed
    print(f"journal growth on {root}: {args.small:,} vs {args.large:,} actions"
          f" ({growth:.0f}x), {args.runs} runs each, p50 [min-max] seconds")
    print(f"{'':36s} {args.small:>7,} actions     {args.large:>7,} actions      ratio  target")
    missed = []
    for name, measure, linear in MEASURES:
        times: dict[int, list[float]] = {size: [] for size in labs}
        for _ in range(args.runs):  # interleaved: a busy neighbour slows both sizes alike
            for size in labs:
                times[size].append(measure(labs[size]))
        times = {size: sorted(t) for size, t in times.items()}
        p50 = {size: statistics.median(t) for size, t in times.items()}
        ratio = p50[args.large] / p50[args.small]
        limit = 1.5 * growth if linear else 1.5
        ok = ratio <= limit
        cells = "  ".join(f"{p50[s]:7.3f} [{t[0]:.3f}-{t[-1]:.3f}]" for s, t in times.items())
        print(f"{name:36s} {cells}  {ratio:6.2f}x  <= {limit:g}x"
              f"{' (linear)' if linear else ''} {'OK' if ok else 'MISSED'}")
        if not ok:
            missed.append(name)
    if missed:
        raise SystemExit(f"missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
