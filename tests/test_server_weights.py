"""The fetch-weights host script and the memory preflight, run for real on this machine
against a Hugging Face cache made here (no internet: what isn't cached fails, fast)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realparts import missing

from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerKind, ServerSpec
from llmops.ops.kinds.server import weights as server_weights

if importlib.util.find_spec("huggingface_hub") is None:  # the host side: it comes with vLLM
    missing("huggingface_hub", "`make host-extras` (it comes with vLLM)", module=True)

BIG = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
       "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
       "torch_dtype": "bfloat16"}
FACTS = {"python": sys.executable, "workdir": "/tmp", "cpu_count": 2,
         "ram_total_bytes": 24 * 2**30, "gpus": [], "packages": {"vllm": "0.32.0"}}


def cache_model(hf_home: Path, repo: str, config: dict[str, Any]) -> Path:
    """A snapshot laid out the way huggingface_hub keeps its cache (refs/main -> commit)."""
    folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(config))
    (snap / "model.safetensors").write_bytes(b"\0" * 16)
    return snap


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostPool]:
    """Host `local` whose HF cache is a fresh folder (the host inherits this environment)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = HostSpec(name="local", local=True, python=sys.executable, workdir=str(tmp_path))
    hosts = HostPool({"local": spec}.get, tmp_path / "known_hosts", facts=lambda _h: FACTS)
    yield hosts
    hosts.close()


def test_cached_hub_model_is_instant(pool: HostPool, tmp_path: Path) -> None:
    snap = cache_model(tmp_path / "hf", "org/small", {"hidden_size": 64})
    lines: list[str] = []
    began = time.monotonic()
    found = server_weights.fetch_weights(
        ServerSpec(name="s", host="local", model="org/small"), pool.transport("local"),
        lines.append)
    assert time.monotonic() - began < 10
    assert found["cached"] is True and found["path"] == str(snap)
    assert found["config"] == {"hidden_size": 64}
    assert lines == ["org/small is already in the cache"]


def test_uncached_hub_model_fails_fast_and_says_so(pool: HostPool) -> None:
    lines: list[str] = []
    began = time.monotonic()
    with pytest.raises(server_weights.WeightsError, match="nothing was stopped"):
        server_weights.fetch_weights(ServerSpec(name="s", host="local", model="org/absent"),
                                 pool.transport("local"), lines.append)
    assert time.monotonic() - began < 15  # no 20 s of retries against an unreachable hub
    assert lines and lines[0].startswith("downloading org/absent")


def test_preflight_refuses_a_cached_hub_model_too_big(pool: HostPool, tmp_path: Path) -> None:
    cache_model(tmp_path / "hf", "org/big", BIG)
    with pytest.raises(SpecError, match=r"does not fit on local: ~70.55B parameters"):
        ServerKind().preflight(ServerSpec(name="s", host="local", model="org/big"), pool)
    ServerKind().preflight(ServerSpec(name="s", host="local", model="org/absent"), pool)


def test_preflight_reads_a_path_models_config(pool: HostPool, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(BIG))
    with pytest.raises(SpecError, match=r"131.4 GiB per host RAM"):
        ServerKind().preflight(ServerSpec(name="s", host="local", model=str(folder)), pool)
    with pytest.raises(SpecError, match="not a model folder"):
        ServerKind().preflight(ServerSpec(name="s", host="local", model=str(tmp_path)), pool)
