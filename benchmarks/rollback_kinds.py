"""Rollback time for the kinds that came after the first five (`rollback.py --kinds`): env,
gateway and cluster, each a change and its rollback through the engine, `repeats` times, the
rollback's whole action (reconcile + checklist) from the journal.

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
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from llmops.rollback.engine import Change, Engine
from rollback import LOOSE, change_and_back, free_port, ok

TESTS = Path(__file__).resolve().parent.parent / "tests"


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


MORE: dict[str, Callable[[Engine, Path, Path, int], list[float]]] = {
    "env": bench_env, "gateway": bench_gateway, "cluster": bench_cluster}
"""Joined to rollback.py's BENCHES for `--kinds`."""
