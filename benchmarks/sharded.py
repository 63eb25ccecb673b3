"""A server sharded across two hosts (PP=2 on a Ray cluster) against the same model on one
host, in one run (issue 16 item 9: the honest reference is a warmed single-host server).

    .venv/bin/python benchmarks/sharded.py [--rounds 5] [--requests 6] [--max-tokens 64]

Needs root (two network-namespace sshd hosts, as tests/clusterfixtures.py makes them, and
root's ip_forward, put back afterwards) and the host extra (the CPU vLLM, Ray). The hosts'
python carries the TEST-ONLY shim (tests/rayshim/) that lets the CPU build of vLLM run on Ray.
One run: a lab with hosts ca and cb, cluster rc (head ca, worker cb, one device each), server
`pp` (the tests' tiny model, pipeline_parallel_size 2 over rc) and server `one` (the same
model and flags, one process on ca); both warmed (3 requests each). Then `rounds` rounds of
`requests` pairs, one request to each server per pair (which goes first alternates: load
drifts), one at a time, from a client inside ca's namespace (vLLM binds loopback): a
streamed completion of `max-tokens` tokens at temperature 0 (ignore_eos). Per request: TTFT
(the first streamed token) and tokens/s (completion tokens over the whole request). Per
round, each server's medians and the ratio sharded / one host; then the median of the rounds'
ratios with their spread (min..max). Everything is taken down at the end, failed or not.

No target: the issue sets none. Sharding is for a model that does not fit one host; on this
box both "hosts" share the same two cores, so the figure is the price of the pipeline's hop
(Ray, gloo over a veth pair, two processes in turn per token), not a speed-up to aim at.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from clusterfixtures import (  # noqa: E402
    DEVICE_KEY,
    FORWARD,
    ray_pids,
    reach_each_other,
    shim_python,
)
from labtools import llmops  # noqa: E402
from sharedserver import LOOSE_TARGETS, SLOW, make_tiny_model  # noqa: E402
from sshhosts import SshHostFactory  # noqa: E402

CLIENT = r"""
import json, sys, time, httpx
ports, rounds, requests, max_tokens, model = json.loads(sys.argv[1])
def one(port, prompt):
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    began = time.perf_counter(); first = None; tokens = 0; usage = None
    with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/completions", json=body,
                      timeout=300) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices"):
                first = first or time.perf_counter()
                tokens += 1
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
    end = time.perf_counter()
    n = usage or tokens
    return {"ttft": first - began, "e2e": end - began, "tokens": n, "tps": n / (end - began)}
names = list(ports)
for i in range(3):  # warm both
    for name in names:
        one(ports[name], f"warm-up {i} of {name}: the operator rolled back")
for r in range(rounds):
    for i in range(requests):
        order = names if (r * requests + i) % 2 == 0 else names[::-1]
        for name in order:
            row = one(ports[name], f"round {r} request {i}: the operator rolled the server back")
            print(json.dumps({"round": r, "server": name, **row}), flush=True)
"""


def say(line: str) -> None:
    print(line, flush=True)


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return (f"median {fmt.format(statistics.median(values))} (min {fmt.format(min(values))}, "
            f"max {fmt.format(max(values))}, n {len(values)})")


def run(lab: Path, *args: str, timeout: float = SLOW) -> dict[str, Any]:
    return dict(json.loads(llmops(lab, *args, "--json", timeout=timeout).stdout))


def up(lab: Path, name: str, model: Path, port: int, *extra: str) -> float:
    began = time.monotonic()
    done = run(lab, "server", "up", name, "--host", "ca", "--model", str(model), "--port",
               str(port), "--dtype", "float32", "--max-model-len", "256", "--cpu-kvcache-gib",
               "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS, *extra)
    assert done["ok"], done
    return time.monotonic() - began


def report(rows: list[dict[str, Any]], rounds: int) -> None:
    ratios: dict[str, list[float]] = {"tps": [], "ttft": []}
    for r in range(rounds):
        mine = [x for x in rows if x["round"] == r]
        med = {(s, k): statistics.median(x[k] for x in mine if x["server"] == s)
               for s in ("pp", "one") for k in ("tps", "ttft")}
        ratios["tps"].append(med["pp", "tps"] / med["one", "tps"])
        ratios["ttft"].append(med["pp", "ttft"] / med["one", "ttft"])
        say(f"round {r}: tokens/s sharded {med['pp', 'tps']:.1f} one host "
            f"{med['one', 'tps']:.1f} (x{ratios['tps'][-1]:.2f}); TTFT sharded "
            f"{med['pp', 'ttft'] * 1000:.1f} ms one host {med['one', 'ttft'] * 1000:.1f} ms "
            f"(x{ratios['ttft'][-1]:.2f})")
    for server, label in (("pp", "sharded PP=2 across ca+cb"), ("one", "one host (ca)")):
        mine = [x for x in rows if x["server"] == server]
        say(f"{label}: tokens/s {spread([x['tps'] for x in mine], '{:.1f}')}; TTFT ms "
            f"{spread([x['ttft'] * 1000 for x in mine], '{:.1f}')}")
    say(f"ratio sharded / one host, tokens/s: {spread(ratios['tps'], '{:.2f}')} "
        "(over the rounds' medians; < 1: slower)")
    say(f"ratio sharded / one host, TTFT:     {spread(ratios['ttft'], '{:.2f}')} "
        "(> 1: later first token)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--port", type=int, default=26481)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llmops-bench-sharded-"))
    factory = SshHostFactory(root / "hosts")
    temp_dir = f"/tmp/llmops-rb-{os.getpid()}"
    was = FORWARD.read_text().strip()
    lab = root / "lab"
    try:
        FORWARD.write_text("1\n")
        hosts = [factory("ca"), factory("cb")]
        for host in hosts:
            reach_each_other(host)
            llmops(lab, "host", "add", host.name, "--address", host.address, "--user",
                   host.user, "--key", str(host.key_path), "--python",
                   shim_python(root, host.name), "--workdir",
                   str(host.workdir), "--trust", host.host_pub_fingerprint, timeout=120)
        model = make_tiny_model(root / "tiny")
        began = time.monotonic()
        run(lab, "cluster", "up", "rc", "--head", "ca", "--workers", "cb", "--interface",
            "eth0", "--port", str(args.port), "--num-cpus", "1", "--object-store-mb", "100",
            "--resources", f"{DEVICE_KEY}=1", "--temp-dir", temp_dir)
        say(f"cluster up in {time.monotonic() - began:.1f} s")
        say(f"server pp (PP=2 on rc) up in "
            f"{up(lab, 'pp', model, args.port + 1, '--cluster', 'rc', '--pp', '2'):.1f} s")
        say(f"server one (ca alone) up in {up(lab, 'one', model, args.port + 2):.1f} s")
        plan = [{"pp": args.port + 1, "one": args.port + 2}, args.rounds, args.requests,
                args.max_tokens, str(model)]
        done = subprocess.run(["ip", "netns", "exec", hosts[0].namespace, sys.executable, "-c",
                               CLIENT, json.dumps(plan)], capture_output=True, text=True,
                              timeout=3600, check=False)
        if done.returncode != 0:
            say(f"client failed: {done.stderr[-2000:]}")
            return 1
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        say(f"{len(rows)} requests of {args.max_tokens} tokens, load "
            f"{os.getloadavg()[0]:.1f}")
        report(rows, args.rounds)
        return 0
    finally:
        for name in ("pp", "one"):
            llmops(lab, "server", "down", name, check=None, timeout=300)
        llmops(lab, "cluster", "down", "rc", check=None, timeout=300)
        for pid in ray_pids(temp_dir):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        factory.teardown()
        subprocess.run(["rm", "-rf", temp_dir], check=False)
        FORWARD.write_text(f"{was}\n")


if __name__ == "__main__":
    sys.exit(main())
