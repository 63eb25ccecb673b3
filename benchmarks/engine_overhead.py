"""The engine's own overhead per action (journal + commit) against a bare `git add` + `git
commit` of the same file, interleaved, repeated; the ratio with its spread.

    .venv/bin/python benchmarks/engine_overhead.py [--actions 40] [--rounds 3] [--profile]

The engine's part is an action whose kind does nothing on a host (a `note` kind registered
here only: observe, plan and checks are empty), so what is timed is llmops's own work:
admission (specs parsed, dependencies, policy), the lock, the `started`, `committed` and
`succeeded` rows with their hash chain, the TOML file written, the commit with its trailers,
the tail anchor in git, and the record folded back. The reference is what an operator would
do by hand: write the same TOML text into a plain git repo, then `git add` and `git commit`
(two git processes). Both are timed in the same loop, one after the other, on the same
growing labs. Target (issue 13): engine <= 2x the bare commit. Exit 1 on a miss.
`--profile` prints the engine's 25 costliest functions (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import Check, Kind, Observed, Progress, Spec, Step
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab

TARGET = 2.0


class NoteSpec(Spec):
    """A resource with nothing on any host: only desired state."""

    text: str = ""


class NoteKind(Kind[NoteSpec, Observed]):
    name: ClassVar[str] = "note"
    folder: ClassVar[str] = "notes"
    Spec: ClassVar[type[Spec]] = NoteSpec
    order: ClassVar[int] = 90

    def observe(self, spec: NoteSpec, hosts: HostPool) -> Observed:
        return Observed()

    def plan(self, desired: NoteSpec | None, current: NoteSpec | None,
             observed: Observed) -> list[Step]:
        return []

    def apply(self, step: Step, spec: NoteSpec | None, hosts: HostPool,
              progress: Progress) -> dict[str, Any]:
        return {}

    def validate(self, spec: NoteSpec, hosts: HostPool) -> list[Check]:
        return []


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def bare_repo(root: Path) -> Path:
    repo = root / "bare"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")
    git(repo, "config", "user.email", "bench@localhost")
    (repo / "notes").mkdir()
    return repo


def one_bare(repo: Path, i: int, spec: NoteSpec) -> float:
    t0 = time.perf_counter()
    (repo / "notes" / f"n{i}.toml").write_text(tomli_w.dumps(spec.to_toml_dict()))
    git(repo, "add", f"notes/n{i}.toml")
    git(repo, "commit", "-q", "-m", f"action {i}: note n{i} added")
    return time.perf_counter() - t0


def one_engine(engine: Engine, i: int, spec: NoteSpec) -> float:
    t0 = time.perf_counter()
    record = engine.act([Change("note", f"n{i}", spec)], f"note n{i} added")
    took = time.perf_counter() - t0
    assert record.status == "succeeded", record
    return took


def spread(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (f"p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f}  "
            f"(min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)})")


def round_of(root: Path, actions: int, profile: bool) -> tuple[list[float], list[float]]:
    lab = Lab(root / "lab")
    engine = Engine(lab, lock_wait=1)
    repo = bare_repo(root)
    engine_times, bare_times = [], []
    profiler = cProfile.Profile() if profile else None
    try:
        for i in range(actions):
            spec = NoteSpec(name=f"n{i}", text=f"note {i} " * 8)
            bare_times.append(one_bare(repo, i, spec))
            if profiler:
                profiler.enable()
            engine_times.append(one_engine(engine, i, spec))
            if profiler:
                profiler.disable()
    finally:
        engine.close()
        lab.close()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return engine_times, bare_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=40, help="Actions per round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds, each on fresh labs.")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's part.")
    args = parser.parse_args()
    KINDS["note"] = NoteKind()
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rounds} rounds of"
          f" {args.actions} actions, engine and bare commit interleaved", flush=True)
    ratios = []
    all_engine: list[float] = []
    all_bare: list[float] = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="llmops-overhead-") as tmp:
            engine_times, bare_times = round_of(Path(tmp), args.actions, args.profile and r == 0)
        ratio = statistics.median(engine_times) / statistics.median(bare_times)
        ratios.append(ratio)
        all_engine += engine_times
        all_bare += bare_times
        print(f"round {r + 1}: engine {spread(engine_times)}\n"
              f"         bare git add + commit {spread(bare_times)}\n"
              f"         ratio {ratio:.2f}x", flush=True)
    ratio = statistics.median(all_engine) / statistics.median(all_bare)
    print(f"all: engine {spread(all_engine)}; bare {spread(all_bare)}")
    print(f"engine overhead: {ratio:.2f}x a bare commit at p50 (rounds {min(ratios):.2f}x-"
          f"{max(ratios):.2f}x; target <= {TARGET}x): {'met' if ratio <= TARGET else 'MISSED'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
