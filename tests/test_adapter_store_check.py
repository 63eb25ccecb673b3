"""The absent-checklist's `store copy kept`: a copy once placed in the store and gone since
fails it; a copy never made (a deploy killed before its copy step) passes it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from labtools import local_spec

from llmops.ops.hostside import adapter_tools
from llmops.ops.kinds.adapter import AdapterKind, AdapterSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

SHA = "c" * 64


def test_store_copy_kept_tells_a_lost_copy_from_one_never_made(tmp_path: Path) -> None:
    engine = Engine(Lab(tmp_path / "lab"))
    host = local_spec(tmp_path)
    try:
        assert engine.act([Change("host", "local", host)], "host local").status == "succeeded"
        spec = AdapterSpec(name="chat", path="/data/a", host="local", sha256=SHA)

        def kept() -> tuple[bool, str]:
            found = {c.name: c for c in AdapterKind().validate_absent(spec, engine.hosts)}
            return found["store copy kept"].ok, found["store copy kept"].detail

        ok, detail = kept()
        assert ok and "never copied" in detail, detail
        store = Path(host.workdir).expanduser() / "adapters"
        (store / SHA).mkdir(parents=True)
        (store / SHA / "adapter_config.json").write_text("{}")
        (store / "placed.log").write_text(SHA + "\n")  # as adapter_store.py's place writes it
        assert kept()[0]
        shutil.rmtree(store / SHA)  # the fault: someone deleted a version a rollback may need
        ok, detail = kept()
        assert not ok and "is gone" in detail, detail
    finally:
        engine.close()


def test_placing_a_copy_writes_the_ledger(tmp_path: Path) -> None:
    src, store = tmp_path / "adapter", tmp_path / "store"
    src.mkdir()
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    script = Path(adapter_tools.__file__).with_name("adapter_store.py")
    sha = adapter_tools.adapter_sha256(str(src))
    for _ in range(2):  # the second finds it there and places nothing
        subprocess.run([sys.executable, str(script), "copy", str(src), str(store), sha],
                       check=True, capture_output=True)
    assert (store / sha / "adapter_config.json").is_file()
    assert (store / "placed.log").read_text() == sha + "\n"
