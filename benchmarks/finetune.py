"""Trainer throughput through llmops against the same trainer.py run by hand, and resume time.

    .venv/bin/python benchmarks/finetune.py [--repeats 3] [--steps 100] [--via auto|engine|procs]
                                            [--keep DIR]

One run, on the tests' tiny model on host `local` (a fresh lab): the trainer detached through
llmops and the same trainer.py with the same config.json run by hand (a plain subprocess,
the same python and environment) alternate, a warm-up pair first (dropped), then `repeats`
pairs. Through llmops is `--via engine`: the run kind's whole action (`Engine.act`, as the
CLI and console do it: inspect, screen, config, detached start, following its first lines);
or `--via procs`: ops/procs.py start of the trainer (procctl's detached session) and tailing
progress.jsonl, the path the run kind takes, without the kind. `auto` takes the engine when
the run kind is registered. Each run's figure is the trainer's own tokens/s (its done line:
tokens seen per wall second of training), so whatever llmops runs beside the trainer counts
(the action's checklist, a trainer dry-run among its checks, is printed per run); the wall
seconds from launch to the done line (its "at") are printed beside it. Then the resume:
`repeats` times a run is SIGKILLed (the trainer alone, as the OOM killer would) after its
first checkpoint, and the seconds from the kill to training again (the first log line after
the resumed start; logging every step) are timed, through the engine's restart (or procs
start again). The machine's load is printed: on a
shared box other work moves every figure. Target: llmops's tokens/s p50 at most 5% under the
hand run's. Exit 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.run.layout import SCRIPTS
from llmops.ops.transport import Transport
from llmops.rollback.engine import Change, Engine
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab

TARGET_OVERHEAD = 0.05
ROWS = 200
SENTENCES = [
    "The operator starts a server and watches the tokens flow.",
    "A rollback brings the lab back to the state it was in before.",
    "Every action is committed to git and journalled before it runs.",
    "Blue and green servers take turns being the live one.",
    "vLLM serves the model through an OpenAI compatible API.",
]
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@dataclass
class Figure:
    tokens_per_s: float
    wall_s: float


def say(line: str) -> None:
    print(line, flush=True)


def spread(values: list[float], unit: str = "s") -> str:
    return (f"p50 {statistics.median(values):8.2f} {unit}  (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def records(folder: Path) -> list[dict[str, Any]]:
    path = folder / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().split("\n")[:-1] if x.strip()]


def wait_event(folder: Path, event: str, alive: Callable[[], bool], after: int = 0,
               timeout: float = 900) -> dict[str, Any]:
    """The first `event` record past the first `after` records (its "at" says when it was
    written: a caller still inside an action sees it later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in records(folder)[after:] if r["event"] in (event, "error")]
        if found:
            if found[0]["event"] == "error":
                raise SystemExit(f"trainer in {folder} failed: {found[0]['message']}")
            return found[0]
        if not alive():
            time.sleep(0.5)  # its last line may land just after it exits
            if not [r for r in records(folder)[after:] if r["event"] == event]:
                raise SystemExit(f"trainer in {folder} ended without a {event} line: "
                                 f"{records(folder)[-3:]}")
        time.sleep(0.02)
    raise SystemExit(f"no {event} line in {folder} within {timeout:.0f}s")


# ---- the two ways of running it ----------------------------------------------------------------


class Hand:
    """trainer.py as a plain subprocess: exec -> done line."""

    def __init__(self, root: Path, config: dict[str, Any], python: str) -> None:
        self.root, self.config, self.python = root, config, python

    def run(self, label: str) -> Figure:
        out = self.root / "hand" / label
        out.mkdir(parents=True)
        path = out / "config.json"
        path.write_text(json.dumps({**self.config, "output_dir": str(out)}))
        trainer = Path(self.config["bin"]) / "trainer.py"
        began = time.time()
        with (out / "log").open("wb") as log:
            proc = subprocess.Popen([self.python, str(trainer), "train", str(path)],
                                    env={**os.environ, **ENV}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            done = wait_event(out, "done", lambda: proc.poll() is None)
        finally:
            proc.wait(timeout=120)
        return Figure(float(done["tokens_per_s"]), done["at"] - began)


class ViaProcs:
    """The trainer started by ops/procs.py (procctl: detached session, logs), progress tailed."""

    def __init__(self, root: Path, t: Transport, config: dict[str, Any], python: str) -> None:
        self.root, self.t, self.config, self.python = root, t, config, python

    def launch(self, name: str, config: dict[str, Any]) -> Path:
        out = Path(config["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config))
        trainer = Path(self.config["bin"]) / "trainer.py"
        procs.start(self.t, name, [self.python, str(trainer), "train", str(out / "config.json")],
                    env=ENV, cwd=str(out))
        return out

    def alive(self, name: str) -> Callable[[], bool]:
        return lambda: procs.status(self.t, name).running

    def run(self, label: str) -> Figure:
        name = f"run.bench-{label}"
        began = time.time()
        out = self.launch(name, {**self.config, "output_dir": str(self.root / "procs" / label)})
        done = wait_event(out, "done", self.alive(name))
        return Figure(float(done["tokens_per_s"]), done["at"] - began)

    def resume(self, label: str, steps: int) -> tuple[float, float]:
        name = f"run.resume-{label}"
        config = {**self.config, "output_dir": str(self.root / "procs" / f"resume-{label}"),
                  "max_steps": steps, "save_steps": 5, "logging_steps": 1}
        out = self.launch(name, config)

        def again() -> None:
            self.launch(name, config)

        return kill_and_resume(out, self.t, name, self.alive(name), again)

    def names(self) -> list[str]:
        return [p.name for p in procs.list_procs(self.t) if p.name.startswith("run.")]


class ViaEngine:
    """The run kind's whole action through the engine, as the CLI and console run it."""

    def __init__(self, engine: Engine, t: Transport, dataset: Path, model: Path,
                 steps: int) -> None:
        from llmops.ops.kinds.run import RunSpec

        self.engine, self.t = engine, t
        self.spec = RunSpec(name="bench", host="local", base=str(model), dataset=str(dataset),
                            max_steps=steps, save_steps=steps, eval_steps=steps,
                            logging_steps=10, batch_size=4, max_seq_len=64, lr=0.01, seed=1,
                            dropout=0.0, eval_split=0.0)
        self.facts = dict(engine.hosts.facts("local") or {})

    def folder(self, spec: Any) -> Path:
        return Path(self.facts["workdir"]) / "runs" / spec.name / spec.cfg_hash()

    def start(self, spec: Any) -> None:
        record = self.engine.act([Change("run", spec.name, spec)], f"run {spec.name} up")
        if record.status != "succeeded":
            raise SystemExit(f"run {spec.name}: {record.status} {record.error}")
        say(f"  action {record.seconds or 0:.1f} s; checks while it trains: " + ", ".join(
            f"{c.name} {c.seconds:.1f} s" for c in record.checks))

    def run(self, label: str) -> Figure:
        spec = self.spec.model_copy(update={"name": f"bench-{label}"})
        began = time.time()
        self.start(spec)
        done = wait_event(self.folder(spec), "done",
                          lambda: procs.status(self.t, spec.proc_name()).running)
        return Figure(float(done["tokens_per_s"]), done["at"] - began)

    def config(self) -> dict[str, Any]:
        """The trainer config the kind wrote (the hand run reads the same)."""
        spec = self.spec.model_copy(update={"name": "bench-warm"})
        return dict(json.loads((self.folder(spec) / "config.json").read_text()))

    def resume(self, label: str, steps: int) -> tuple[float, float]:
        spec = self.spec.model_copy(update={
            "name": f"resume-{label}", "max_steps": steps, "save_steps": 5, "logging_steps": 1})
        self.start(spec)

        def restart() -> None:
            record = self.engine.restart("run", spec.name)
            if record.status != "succeeded":
                raise SystemExit(f"restart of run {spec.name}: {record.status} {record.error}")

        return kill_and_resume(self.folder(spec), self.t, spec.proc_name(),
                               lambda: procs.status(self.t, spec.proc_name()).running, restart)

    def names(self) -> list[str]:
        return [p.name for p in procs.list_procs(self.t) if p.name.startswith("run.")]


def kill_and_resume(out: Path, t: Transport, name: str, alive: Callable[[], bool],
                    start_again: Callable[[], None]) -> tuple[float, float]:
    """SIGKILL after the first checkpoint, start again: seconds to the resumed start line
    and to training again (its first log line)."""
    wait_event(out, "checkpoint", alive)
    pid = procs.status(t, name).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    while alive():
        time.sleep(0.02)
    seen = len(records(out))
    start_again()
    started = wait_event(out, "start", alive, after=seen)
    if not started.get("resumed_from"):
        raise SystemExit(f"{name} started again without resuming: {started}")
    log = wait_event(out, "log", alive, after=seen)
    procs.stop(t, name, grace=10)
    return started["at"] - killed, log["at"] - killed


# ---- setup and main ----------------------------------------------------------------------------


def setup(engine: Engine, root: Path) -> tuple[Path, Path]:
    """Host local (its data dirs in root), the tiny model, rows in the training dir."""
    data = root / "data" / "training"
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(root / "work"),
                    data_dirs=[str(data), str(root / "data" / "validation")])
    added = engine.act([Change("host", "local", host)], "host local added")
    if added.status != "succeeded":
        raise SystemExit(f"host local: {added.error}")
    model = root / "tiny-model"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
    data.mkdir(parents=True)
    rows = data / "rows.jsonl"
    rows.write_text("".join(
        json.dumps({"text": " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(3))})
        + "\n" for i in range(ROWS)))
    return model, rows


def plain_config(root: Path, model: Path, rows: Path, steps: int) -> dict[str, Any]:
    """For --via procs: the config the run kind would write, the rows unscreened (clean)."""
    return {"base": str(model), "train_file": str(rows), "eval_file": None, "format": "text",
            "text_field": "text", "prompt_field": None, "completion_field": None,
            "messages_field": None, "r": 8, "alpha": 16, "dropout": 0.0,
            "target_modules": ["q_proj", "v_proj"], "qlora": False, "lr": 0.01, "epochs": 1.0,
            "max_steps": steps, "batch_size": 4, "grad_accum": 1, "max_seq_len": 64,
            "eval_steps": steps, "save_steps": steps, "logging_steps": 10,
            "early_stopping_patience": None, "seed": 1, "output_dir": "", "use_cpu": True,
            "spec_hash": "bench"}


def install_bin(root: Path) -> Path:
    target = root / "work" / "bin"
    target.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS:
        shutil.copy(Path(str(files("llmops.ops.hostside").joinpath(script))), target / script)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Figures per measure (>= 3).")
    parser.add_argument("--steps", type=int, default=100, help="Training steps per run.")
    parser.add_argument("--via", choices=("auto", "engine", "procs"), default="auto",
                        help="Through the run kind's action, or procs start (no kind).")
    parser.add_argument("--keep", type=Path, help="Use (and keep) this folder, not a temp one.")
    args = parser.parse_args()
    via = args.via if args.via != "auto" else ("engine" if "run" in KINDS else "procs")
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-bench-ft-"))
    root.mkdir(parents=True, exist_ok=True)
    lab = Lab(root / "lab")
    engine = Engine(lab)
    began = time.monotonic()
    say(f"tiny model on host local, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"{args.steps} steps a run, through llmops via {via} ({root})")
    runner: ViaEngine | ViaProcs | None = None
    try:
        model, rows = setup(engine, root)
        t = engine.hosts.transport("local")
        if via == "engine":
            runner = ViaEngine(engine, t, rows, model, args.steps)
            warm = runner.run("warm")
            config = {**runner.config(), "bin": str(root / "work" / "bin")}
        else:
            config = {**plain_config(root, model, rows, args.steps), "bin": str(install_bin(root))}
            runner = ViaProcs(root, t, config, sys.executable)
            warm = runner.run("warm")
        hand = Hand(root, config, sys.executable)
        warm_hand = hand.run("warm")
        say(f"warm-up (dropped): llmops {warm.tokens_per_s:8.0f} tok/s, "
            f"by hand {warm_hand.tokens_per_s:8.0f} tok/s")
        ours: list[Figure] = []
        theirs: list[Figure] = []
        for i in range(args.repeats):
            ours.append(runner.run(str(i)))
            theirs.append(hand.run(str(i)))
            say(f"pair {i + 1}: llmops {ours[-1].tokens_per_s:8.0f} tok/s "
                f"({ours[-1].wall_s:5.1f} s launch -> done), by hand "
                f"{theirs[-1].tokens_per_s:8.0f} tok/s ({theirs[-1].wall_s:5.1f} s)")
        say(f"llmops ({via}) tokens/s   {spread([f.tokens_per_s for f in ours], 'tok/s')}")
        say(f"by hand tokens/s          {spread([f.tokens_per_s for f in theirs], 'tok/s')}")
        say(f"llmops launch -> done     {spread([f.wall_s for f in ours])}")
        say(f"by hand exec -> done      {spread([f.wall_s for f in theirs])}")
        to_start, to_log = [], []
        for i in range(args.repeats):
            a, b = runner.resume(str(i), steps=max(args.steps, 200))
            to_start.append(a)
            to_log.append(b)
            say(f"resume {i + 1}: SIGKILL -> resumed start {a:5.1f} s, -> training again "
                f"{b:5.1f} s")
        say(f"SIGKILL -> resumed start line       {spread(to_start)}")
        say(f"SIGKILL -> training again (1st log) {spread(to_log)}")
    finally:
        if runner is not None:
            for name in runner.names():
                procs.stop(t, name, grace=10)
        engine.close()
        lab.close()
    say(f"{time.monotonic() - began:.0f}s in all, load now {os.getloadavg()[0]:.1f}")
    p50_ours = statistics.median(f.tokens_per_s for f in ours)
    p50_hand = statistics.median(f.tokens_per_s for f in theirs)
    overhead = 1 - p50_ours / p50_hand
    verdict = "OK" if overhead <= TARGET_OVERHEAD else "MISSED"
    pairs = ", ".join(f"{(1 - o.tokens_per_s / h.tokens_per_s) * 100:+.1f}%"
                      for o, h in zip(ours, theirs, strict=True))
    say(f"llmops tokens/s overhead vs by hand: p50 {overhead * 100:+.1f}% (pairs: {pairs})"
        f"  target <= {TARGET_OVERHEAD * 100:.0f}%  {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
