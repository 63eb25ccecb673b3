"""An environment's rollback by symlink switch against its rollback by reinstall, side by side.

    .venv/bin/python benchmarks/env_switch.py [--repeats 5] [--keep DIR]

Through the engine as the CLI and console run it (fresh lab, host `local`, index mode from a
file:// index of the tests' tiny wheels, so nothing is downloaded): two envs with the same
pins, `sw` keeping the previous venv (keep_previous on) and `ri` not (off: every switch prunes
the other venv). Each is upgraded 1.0 -> 2.0 once; then, `repeats` times, alternating so both
see the same load, the newest action of each is rolled back (2.0 -> 1.0, then 1.0 -> 2.0, ...):
`sw` by a snapshot and a symlink switch, `ri` by a snapshot and a rebuild of the venv exactly
from the recorded manifest (`pip install --no-deps -r`, uninstall what is not in it, verify
the freeze). Figures are the journal's: the whole rollback action (reconcile + checklist) and
its reconcile alone (the steps), p50 and min-max; the switch step itself; the ratios. The
machine's load is printed: other work on a shared box inflates every figure. Target: the
switch rollback's reconcile <= 0.5x the reinstall's. Exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_env_wheels import PKG, make_wheels  # noqa: E402

from llmops.ops.kinds.env import EnvSpec  # noqa: E402
from llmops.ops.kinds.host import HostSpec  # noqa: E402
from llmops.rollback.engine import Change, Engine  # noqa: E402
from llmops.rollback.lab import Lab  # noqa: E402
from llmops.rollback.records import ActionRecord  # noqa: E402

TARGET = 0.5


def spread(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):6.2f}s  min {min(values):6.2f}s  "
            f"max {max(values):6.2f}s  (n={len(values)})")


def reconcile_seconds(record: ActionRecord) -> float:
    return sum(s.seconds or 0.0 for s in record.steps if s.phase != "revert")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Work in this folder and leave it.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-env-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    index = (make_wheels(root / "wheels") / "simple").as_uri()
    lab = Lab(root / "lab")
    engine = Engine(lab, lock_wait=60)
    print(f"load average before: {os.getloadavg()}", flush=True)
    try:
        host = HostSpec(name="local", local=True, python=sys.executable,
                        workdir=str(root / "work"))
        assert engine.act([Change("host", "local", host)], "host local added").ok

        def spec(name: str, version: str, keep: bool) -> EnvSpec:
            return EnvSpec(name=name, host="local", packages=[f"{PKG}=={version}"],
                           index_url=index, keep_previous=keep)

        for name, keep in (("sw", True), ("ri", False)):
            for version in ("1.0", "2.0"):
                record = engine.act([Change("env", name, spec(name, version, keep))],
                                    f"env {name} {version}")
                assert record.ok, (record.error, [c for c in record.checks if not c.ok])
        whole: dict[str, list[float]] = {"sw": [], "ri": []}
        steps: dict[str, list[float]] = {"sw": [], "ri": []}
        switch: list[float] = []
        for i in range(args.repeats):
            for name in ("sw", "ri"):
                last = engine.last_undoable("env", name)
                assert last is not None
                record = engine.rollback(last.id)
                verbs = [s.verb for s in record.steps]
                want = "switch" if name == "sw" else "restore"
                assert record.ok and want in verbs, (name, verbs, record.error)
                whole[name].append(record.seconds or 0.0)
                steps[name].append(reconcile_seconds(record))
                if name == "sw":
                    switch += [s.seconds or 0.0 for s in record.steps if s.verb == "switch"]
                print(f"  {i + 1}/{args.repeats} {name}: {' + '.join(verbs)} "
                      f"reconcile {steps[name][-1]:.2f}s, whole {whole[name][-1]:.2f}s",
                      flush=True)
        print(f"load average after: {os.getloadavg()}")
        print("rollback by symlink switch (keep_previous on)")
        print(f"  whole action   {spread(whole['sw'])}")
        print(f"  reconcile      {spread(steps['sw'])}")
        print(f"  switch step    {spread(switch)}")
        print("rollback by reinstall from the manifest (keep_previous off)")
        print(f"  whole action   {spread(whole['ri'])}")
        print(f"  reconcile      {spread(steps['ri'])}")
        ratios = [a / b for a, b in zip(steps["sw"], steps["ri"], strict=True) if b]
        ratio_whole = statistics.median(whole["sw"]) / statistics.median(whole["ri"])
        ratio = statistics.median(steps["sw"]) / statistics.median(steps["ri"])
        print(f"switch / reinstall: reconcile p50 {ratio:.3f}x (pairs {min(ratios):.3f}-"
              f"{max(ratios):.3f}x), whole action p50 {ratio_whole:.3f}x; target reconcile "
              f"<= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'}")
        return 0 if ratio <= TARGET else 1
    finally:
        engine.close()
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
