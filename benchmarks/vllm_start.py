"""What `cpu_inline_worker` saves a CPU server's restart: the same tiny-model server restarted
through llmops with and without it, side by side in one run.

    .venv/bin/python benchmarks/vllm_start.py [--repeats 3] [--port 18971]

One run starts two recreate servers on host `local` (the tiny model, eager, loose targets):
`plain` as vLLM's CPU build runs one rank by default (API server, engine-core process, and a
worker process of its own) and `inline` with `cpu_inline_worker = true` (the model in the
engine-core process: one vLLM import fewer). Both are up before the timing starts (their
first, coldest start is not counted), then each is restarted `repeats` times, alternating
(`Engine.restart`: stop, start, wait until ready, the checklist; what a rollback of a
recreate server waits on). Prints each restart's seconds, each pair's ratio inline / plain,
the medians with their spread, and both servers' resident memory (process trees, once ready).
Target: median ratio <= 0.85 (the worker's import is about a third of a tiny model's start).
Exit 1 when missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import psutil
from bench_agreement import say, spread

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

TARGET = 0.85
NAMES = ("plain", "inline")


def tree_rss_mib(port: int) -> float:
    """Resident memory of the process listening on `port` and its children, in MiB."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            top = psutil.Process(conn.pid)
            procs = [top, *top.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
    return float("nan")


def up(engine: Engine, root: Path, model: Path, name: str, port: int) -> None:
    spec = ServerSpec(name=name, host="local", model=str(model), port=port, dtype="float32",
                      max_model_len=256, cpu_kvcache_gib=1, args={"enforce-eager": True},
                      cpu_inline_worker=name == "inline",
                      target_ttft_p95_ms=60_000, target_output_tps=0.001)
    began = time.monotonic()
    record = engine.act([Change("server", name, spec)], f"server {name} up")
    if record.status != "succeeded":
        raise SystemExit(f"server {name} did not come up: {record.error}")
    say(f"{name}: up in {time.monotonic() - began:.1f} s (cold, not counted)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=18971)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llmops-vllm-start-"))
    engine = Engine(Lab(root / "lab"), lock_wait=60)
    ports = {"plain": args.port, "inline": args.port + 1}
    seconds: dict[str, list[float]] = {n: [] for n in NAMES}
    try:
        host = HostSpec(name="local", local=True, python=sys.executable,
                        workdir=str(root / "work"))
        assert engine.act([Change("host", "local", host)], "host local").status == "succeeded"
        model = root / "tiny-model"
        source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
        engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
        for name in NAMES:
            up(engine, root, model, name, ports[name])
        memory = {n: tree_rss_mib(ports[n]) for n in NAMES}
        for i in range(args.repeats):
            order = NAMES if i % 2 == 0 else NAMES[::-1]
            for name in order:
                began = time.monotonic()
                record = engine.restart("server", name)
                took = time.monotonic() - began
                if record.status != "succeeded":
                    say(f"{name}: restart {i + 1} failed: {record.error}")
                    return 1
                seconds[name].append(took)
                say(f"{name}: restart {i + 1} {took:.1f} s")
        ratios = [a / b for a, b in zip(seconds["inline"], seconds["plain"], strict=True)]
        say(f"plain restart s:  {spread(seconds['plain'])}")
        say(f"inline restart s: {spread(seconds['inline'])}")
        say(f"pairs inline/plain: {', '.join(f'{r:.3f}' for r in ratios)}")
        ratio = statistics.median(seconds["inline"]) / statistics.median(seconds["plain"])
        say(f"resident MiB once ready: plain {memory['plain']:.0f}, "
            f"inline {memory['inline']:.0f}")
        verdict = "met" if ratio <= TARGET else "MISSED"
        say(f"median ratio inline/plain {ratio:.3f} (target <= {TARGET}): {verdict}")
        return 0 if ratio <= TARGET else 1
    finally:
        for name in NAMES:
            if engine.lab.read_spec("server", name) is not None:
                engine.act([Change("server", name, None)], f"server {name} down")
        engine.close()
        engine.lab.close()


if __name__ == "__main__":
    sys.exit(main())
