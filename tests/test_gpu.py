"""The GPU paths, on a machine with NVIDIA GPUs: the NVML probe, per-GPU telemetry (the
host-side gpustat script the poller runs), and a real vLLM server pinned by `gpus` (its
CUDA_VISIBLE_DEVICES, and the checklist's GPU memory check on that GPU).

Elsewhere each test is skipped and the skip is reported (`-rs`); LLMOPS_REQUIRE_GPU=1 turns
a missing GPU into a failure. The pure side (`gpus` -> CUDA_VISIBLE_DEVICES in the argv and
env) is covered everywhere by tests/cases/server/*.toml. See DESIGN.md for when these last
ran on a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from labtools import local_spec
from realparts import assert_probe_matches_machine, gpu_count, require_gpu, require_vllm

from llmops.ops import procs
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

pytestmark = pytest.mark.gpu


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A lab with host `local` (this machine, probed by the action)."""
    require_gpu()
    lab = Lab(tmp_path / "lab")
    eng = Engine(lab)
    record = eng.act([Change("host", "local", local_spec(tmp_path))], "host local added")
    assert record.status == "succeeded", record.error
    yield eng
    eng.close()
    lab.close()


def test_nvml_probe_reports_every_gpu(engine: Engine) -> None:
    facts = engine.lab.journal.observed("host", "local")
    assert facts
    assert_probe_matches_machine(facts)
    assert facts["gpu_driver"] and not facts.get("gpu_note")
    assert [g["index"] for g in facts["gpus"]] == list(range(gpu_count()))
    for gpu in facts["gpus"]:
        assert 0 <= gpu["memory_used_bytes"] <= gpu["memory_total_bytes"], gpu


def test_per_gpu_telemetry_script(engine: Engine) -> None:
    t = engine.hosts.transport("local")
    source = files("llmops.ops.hostside").joinpath("gpustat.py").read_text()
    gpus = json.loads(t.python_script(source, [], timeout=60).check().stdout)
    assert [g["index"] for g in gpus] == list(range(gpu_count()))
    for gpu in gpus:
        assert 0 <= gpu["utilization_percent"] <= 100, gpu
        assert 0 < gpu["memory_used_bytes"] <= gpu["memory_total_bytes"], gpu
        # datacentre boards report their draw (cost from measured power); None where one can't
        assert gpu["power_watts"] is None or 0 < gpu["power_watts"] < 2000, gpu


def test_a_cluster_nodes_gpus_as_the_console_shows_them(engine: Engine) -> None:
    """A sharded server's detail lists each node's GPUs from that node's own NVML
    (cluster/placement.node_gpus, asked on its host; here host `local`)."""
    from llmops.console.presenters.cluster import gpu_text
    from llmops.ops.kinds.cluster.placement import node_gpus

    node = node_gpus(engine.hosts, "local")
    assert node["gpu_note"] is None, node
    assert [g["index"] for g in node["gpus"]] == list(range(gpu_count()))
    text = gpu_text(node)
    for gpu in node["gpus"]:
        total = gpu["memory_total_bytes"] / 2**30
        assert f"GPU {gpu['index']} " in text and f"/{total:.1f} GiB" in text, text
    print(text)


@pytest.mark.vllm
@pytest.mark.timeout(900)
def test_server_pinned_to_a_gpu(engine: Engine, tmp_path: Path) -> None:
    """`gpus = [last]`: vLLM runs with CUDA_VISIBLE_DEVICES=last and the checklist's memory
    check finds the weights on that GPU."""
    require_vllm(module=False)
    t = engine.hosts.transport("local")
    model = tmp_path / "tiny"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    t.python_script(source, [str(model)], timeout=300).check()
    last = gpu_count() - 1
    spec = ServerSpec(name="gpu-tiny", host="local", model=str(model), dtype="float32",
                      max_model_len=256, gpus=[last], gpu_memory_utilization=0.3,
                      port=18451, args={"enforce-eager": True})
    try:
        record = engine.act([Change("server", spec.name, spec)], "server gpu-tiny up")
        assert record.status == "succeeded", (record.error, record.checks)
        memory = next(c for c in record.checks if c.name == "memory")
        assert memory.ok and f"GPU {last} " in memory.detail, memory
        pid = procs.status(t, spec.name).pid
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"CUDA_VISIBLE_DEVICES={last}".encode() in environ
    finally:
        engine.act([Change("server", spec.name, None)], "server gpu-tiny down")



def _gpu_run(engine: Engine, tmp_path: Path, name: str, **changes: object) -> dict:
    """A run of the tiny model pinned to the last GPU, through the engine, to done; returns
    its result.json. The trainer's env must carry CUDA_VISIBLE_DEVICES for that GPU."""
    import time

    from finetune_fixtures import text_rows, tiny_model_dir, write_rows

    from llmops.ops.kinds.run import RunSpec

    last = gpu_count() - 1
    rows = write_rows(tmp_path / "data" / "training" / f"{name}.jsonl", text_rows(64))
    spec = RunSpec.model_validate({
        "name": name, "host": "local", "base": str(tiny_model_dir()), "dataset": str(rows),
        "max_steps": 20, "save_steps": 10, "eval_steps": 10, "eval_split": 0.1,
        "max_seq_len": 64, "lr": 0.01, "gpus": [last], **changes})
    record = engine.act([Change("run", name, spec)], f"run {name}")
    assert record.status == "succeeded", (record.error, record.checks)
    assert record.checks_passed, [c for c in record.checks if not c.ok]
    t = engine.hosts.transport("local")
    info = procs.status(t, spec.proc_name())
    if info.running and info.pid:
        environ = Path(f"/proc/{info.pid}/environ").read_bytes().split(b"\0")
        assert f"CUDA_VISIBLE_DEVICES={last}".encode() in environ
    deadline = time.monotonic() + 300
    while engine.status(spec) != "done":
        assert time.monotonic() < deadline, engine.logs(spec, 30)
        assert engine.status(spec) not in ("failed", "interrupted"), engine.logs(spec, 30)
        time.sleep(1)
    workdir = (engine.hosts.facts("local") or {})["workdir"]
    result = json.loads((Path(workdir) / "runs" / name / spec.cfg_hash() / "result.json")
                        .read_text())
    assert result["steps"] == 20 and result["peak_gpu_mem_bytes"] > 0, result
    print(f"{name}: {result['tokens_per_s']:.0f} tokens/s, "
          f"peak {result['peak_gpu_mem_bytes'] / 2**20:.0f} MiB on GPU {last}")
    return dict(result)


@pytest.fixture
def gpu_engine(tmp_path: Path) -> Iterator[Engine]:
    """Host `local` whose data dirs are the test's folder (runs read data only there)."""
    require_gpu()
    lab = Lab(tmp_path / "lab")
    eng = Engine(lab)
    dirs = [str(tmp_path / "data" / "training")]
    record = eng.act([Change("host", "local", local_spec(tmp_path, data_dirs=dirs))], "host")
    assert record.status == "succeeded", record.error
    yield eng
    eng.close()
    lab.close()


def test_lora_run_on_a_gpu(gpu_engine: Engine, tmp_path: Path) -> None:
    """A LoRA run through the engine trains on the GPU it is pinned to (peak memory > 0)."""
    result = _gpu_run(gpu_engine, tmp_path, "gpu-lora")
    assert result["tokens_per_s"] > 0 and result["sha256"]


def test_qlora_run_on_a_gpu(gpu_engine: Engine, tmp_path: Path) -> None:
    """QLoRA (4-bit base via bitsandbytes) is admitted on a CUDA host and trains there."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes on the GPU host")
    result = _gpu_run(gpu_engine, tmp_path, "gpu-qlora", qlora=True)
    assert result["tokens_per_s"] > 0 and result["sha256"]
