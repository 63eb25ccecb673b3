"""The gateway's overhead per request: the same chat completion straight to vLLM and through
the llmops gateway (LiteLLM under gunicorn, one worker) in front of it, in one run.

    .venv/bin/python benchmarks/gateway.py [--repeats 5] [--requests 40] [--port 18965]
        [--gateway-port 18966] [--venv DIR]

One run starts a fresh lab (host `local`, the tests' tiny model, one eager server, one gateway
routing `chat` to it; the master key a random value in this process's environment), then
`repeats` rounds of `requests` pairs: each pair sends one request direct and one through the
gateway (which goes first alternates: load drifts), one at a time, max_tokens 1, a prompt never
sent before (the cache is off anyway). Per round: median latency of each, their difference
(the overhead), LiteLLM's own `x-litellm-overhead-duration-ms` median and the CPU its gunicorn
worker spent per request (from /proc: less sensitive to a shared box's load than wall-clock
time). Prints every round,
then the median overhead over the rounds with its spread (min..max). Target (issue 15): median
overhead <= 15 ms; exit 1 when missed. The venv defaults to the tests' cache
(~/.cache/llmops-tests/litellm-<version>): the first run installs LiteLLM there. Everything is
taken down at the end, failed or not.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import httpx

from llmops.ops import procs
from llmops.ops.kinds.gateway import GatewaySpec
from llmops.ops.kinds.gateway.apply import workers
from llmops.ops.kinds.gateway.spec import LITELLM_VERSION
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

TARGET_MS = 15.0
KEY_ENV = "LLMOPS_BENCH_GATEWAY_KEY"


def say(line: str) -> None:
    print(line, flush=True)


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.2f} (min {min(values):.2f}, max "
            f"{max(values):.2f}, n {len(values)})")


def start(engine: Engine, root: Path, args: argparse.Namespace) -> str | None:
    """Host, tiny model, server `bench`, gateway `gw`; the model name, None on failure."""
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(root / "work"))
    assert engine.act([Change("host", "local", host)], "host local").status == "succeeded"
    model = root / "tiny-model"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
    server = ServerSpec(name="bench", host="local", model=str(model), port=args.port,
                        dtype="float32", max_model_len=256, cpu_kvcache_gib=1,
                        args={"enforce-eager": True}, target_ttft_p95_ms=60_000,
                        target_output_tps=0.001)
    began = time.monotonic()
    up = engine.act([Change("server", "bench", server)], "server bench up")
    if up.status != "succeeded":
        say(f"server did not come up: {up.error}")
        return None
    say(f"server up in {time.monotonic() - began:.1f} s")
    gateway = GatewaySpec(name="gw", host="local", port=args.gateway_port,
                          models={"chat": ["bench"]}, master_key_env=KEY_ENV,
                          venv=str(args.venv))
    began = time.monotonic()
    up = engine.act([Change("gateway", "gw", gateway)], "gateway gw up")
    if up.status != "succeeded":
        say(f"gateway did not come up: {up.error}")
        return None
    say(f"gateway up in {time.monotonic() - began:.1f} s (install included if the venv was "
        "new)")
    return str(model)


def one(c: httpx.Client, url: str, model: str, prompt: str, key: str | None
        ) -> tuple[float, float | None]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    began = time.perf_counter()
    r = c.post(url, headers=headers, json={"model": model, "max_tokens": 1, "temperature": 0,
                                           "messages": [{"role": "user", "content": prompt}]})
    seconds = time.perf_counter() - began
    r.raise_for_status()
    own = r.headers.get("x-litellm-overhead-duration-ms")
    return seconds * 1000, float(own) if own else None


def worker_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of the gateway's gunicorn worker so far: what LiteLLM
    spends per request, less sensitive to the box's load than wall-clock time."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def what_runs(engine: Engine, venv: Path, root: Path) -> str:
    """The gateway's worker as it runs: the LiteLLM patches its log says it applied, whether
    uvicorn has httptools (the C parser) and uvloop in the venv, and which key check the
    config names (llmops' own `custom_auth`, or LiteLLM's)."""
    lines = procs.tail(engine.hosts.transport("local"), "gateway.gw", 400)
    patches = [ln for ln in lines if ln.startswith("llmops gateway patches:")]
    parser = "httptools" if list(venv.glob("lib/python*/site-packages/httptools")) else "h11"
    loop = "uvloop" if list(venv.glob("lib/python*/site-packages/uvloop")) else "asyncio"
    try:
        config = json.loads((root / "work" / "gateways" / "gw" / "config.yaml").read_text())
        auth = config["general_settings"].get("custom_auth") or "LiteLLM's user_api_key_auth"
    except (OSError, ValueError, KeyError):
        auth = "? (config not read)"
    return (f"{patches[-1] if patches else 'no patches line in the log'}; HTTP parser "
            f"{parser}; loop {loop}; key check {auth}")


def gateway_worker(engine: Engine) -> int | None:
    """The pid of the gateway's one gunicorn worker (the benchmark's host is this machine)."""
    t = engine.hosts.transport("local")
    master = procs.status(t, "gateway.gw").pid
    found = workers(t, master) if master else []
    return found[0] if len(found) == 1 else None


def rounds(args: argparse.Namespace, model: str, key: str, worker: int | None = None
           ) -> tuple[list[float], list[float]]:
    direct_url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
    gateway_url = f"http://127.0.0.1:{args.gateway_port}/v1/chat/completions"
    overheads, cpu_ms = [], []
    with httpx.Client(timeout=120) as c:
        for w in range(5):  # warm both paths (connections, the worker's first requests)
            one(c, direct_url, model, f"warm {w}", None)
            one(c, gateway_url, "chat", f"warm {w}", key)
        for r in range(args.repeats):
            direct, through, own = [], [], []
            cpu_before = worker_cpu(worker)
            for i in range(args.requests):
                prompt = f"round {r} request {i} {secrets.token_hex(4)}"
                pair = [(direct_url, model, None), (gateway_url, "chat", key)]
                if (r + i) % 2:
                    pair.reverse()
                for url, name, k in pair:
                    ms, header = one(c, url, name, prompt, k)
                    (through if k else direct).append(ms)
                    if header is not None:
                        own.append(header)
            overhead = statistics.median(through) - statistics.median(direct)
            overheads.append(overhead)
            cpu_after = worker_cpu(worker)
            cpu = (None if cpu_before is None or cpu_after is None
                   else 1000 * (cpu_after - cpu_before) / len(through))
            if cpu is not None:
                cpu_ms.append(cpu)
            say(f"round {r + 1} (load {os.getloadavg()[0]:.1f}): direct median "
                f"{statistics.median(direct):.1f} ms, gateway median "
                f"{statistics.median(through):.1f} ms, overhead {overhead:.1f} ms, "
                f"LiteLLM's own overhead header median "
                f"{statistics.median(own) if own else float('nan'):.1f} ms, its worker's CPU "
                f"{'?' if cpu is None else f'{cpu:.1f}'} ms per request")
    return overheads, cpu_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--port", type=int, default=18965)  # not a test's (env_servers: 18961-3)
    parser.add_argument("--gateway-port", type=int, default=18966)
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get(
        "LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests")) /
        f"litellm-{LITELLM_VERSION}")
    args = parser.parse_args()
    key = os.environ[KEY_ENV] = "sk-bench-" + secrets.token_hex(12)
    root = Path(tempfile.mkdtemp(prefix="llmops-gateway-bench-"))
    engine = Engine(Lab(root / "lab"))
    say(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.repeats} rounds of "
        f"{args.requests} request pairs, max_tokens 1 ({root})")
    try:
        model = start(engine, root, args)
        if model is None:
            return 1
        say(what_runs(engine, args.venv, root))
        overheads, cpu_ms = rounds(args, model, key, gateway_worker(engine))
        say(f"gateway overhead per request, ms: {spread(overheads)}")
        if cpu_ms:
            say(f"the LiteLLM worker's CPU per request, ms: {spread(cpu_ms)}")
        met = statistics.median(overheads) <= TARGET_MS
        say(f"target (median overhead <= {TARGET_MS:.0f} ms): {'met' if met else 'MISSED'}")
        return 0 if met else 1
    finally:
        for kind, name in (("gateway", "gw"), ("server", "bench")):
            if engine.lab.read_spec(kind, name) is not None:
                engine.act([Change(kind, name, None)], f"{kind} {name} down")
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
