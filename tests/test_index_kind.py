"""The index kind through the real `llmops` CLI, the engine and journal, a real CPU vLLM
serving all-MiniLM-L6-v2 (the session's embedding server, test_index_support.py) and the
Weaviate stand-in (tests/weaviate_standin: the real REST + gRPC protocol, driven by the real
weaviate-client).

An index on host `local` behind an API key (create, ingest, re-ingest adds nothing, a changed
document replaces its chunks, hybrid query ranks the relevant document first, a destructive
change is backed up first and rolled back by restoring that backup, and the rollback of the
rollback), the key nowhere in git or lab.db; an index on an SSH namespace host whose Weaviate
listens on the namespace's loopback only (reached through forwards of both ports); llmops
running Weaviate as a binary there; eval per commit; each check failing on a real fault."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from labtools import llmops
from sshhosts import SshHost
from test_index_support import (
    KEY_ENV,
    PY,
    TESTS,
    Setup,
    act,
    add_far,
    assert_no_key,
    checks,
    embedding_setup,
    facts,
    free_port,
    snapshot,
    start_standin,
    write_docs,
    write_pdf,
)

from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

pytestmark = pytest.mark.timeout(1500)  # the first test here may start the embedding vLLM


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Setup:
    return embedding_setup(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def standin(setup: Setup) -> Iterator[Any]:
    """The stand-in on this machine's loopback, behind the session's API key."""
    handle = start_standin(setup.root / "backups", api_key=setup.key)
    try:
        yield handle
    finally:
        for name in ("docs", "evals"):  # the session's lab outlives this module's stand-in
            llmops(setup.lab, "index", "remove", name, check=None, env=setup.env, timeout=300)
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

    before = next(r for r in json.loads(llmops(lab, "index", "list", "--json", env=env).stdout)
                  if r["name"] == "docs")
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


def test_api_key_from_the_os_keyring(setup: Setup, standin: Any) -> None:
    """api_key_keyring = SERVICE/USER: the key read from a real OS keyring backend
    (keyrings.alt's file keyring in a tmp folder, chosen by PYTHON_KEYRING_BACKEND as an
    operator would) by the CLI and by the ingest worker it starts, which gets only the name;
    the variable holding the key is not set anywhere here. An entry that is not there is
    refused naming the field and the fix, nothing written; the key in no commit or lab.db."""
    from keyrings.alt.file import PlaintextKeyring

    lab, data = setup.lab, setup.root / "keyring-data"
    ring_env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
                "XDG_DATA_HOME": str(data)}
    ring = PlaintextKeyring()
    ring.file_path = str(data / "python_keyring" / "keyring_pass.cfg")  # type: ignore[misc]
    ring.set_password("llmops-test", "weaviate", setup.key)
    docs = write_docs(setup.root / "ring-docs")
    create = ["index", "create", "ringed", "--host", "local", "--collection", "Ringed",
              "--embed-server", "emb", "--http-port", str(standin.http_port), "--grpc-port",
              str(standin.grpc_port), "--source", str(docs)]

    before = snapshot(lab)
    missing = llmops(lab, *create, "--api-key-keyring", "llmops-test/nobody", "--json",
                     check=2, env=ring_env)
    error = json.loads(missing.stdout)["error"]
    assert "api_key_keyring" in error and "no entry llmops-test/nobody" in error, error
    assert "keyring set llmops-test nobody" in error, error
    assert snapshot(lab) == before

    created = act(lab, *create, "--api-key-keyring", "llmops-test/weaviate", env=ring_env)
    got = checks(created)
    assert all(c["ok"] for c in got.values()), got
    assert facts(created, "ingest")["added"] > 0  # the worker reached Weaviate with the key
    hits = json.loads(llmops(lab, "index", "query", "ringed", "tensor parallelism across "
                             "GPUs", "--json", env=ring_env).stdout)["hits"]
    assert hits[0]["source"] == "gpu.md"
    spec_text = (lab / "indexes" / "ringed.toml").read_text()
    assert 'api_key_keyring = "llmops-test/weaviate"' in spec_text
    act(lab, "index", "remove", "ringed", env=ring_env)
    assert_no_key(lab, setup.key)


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
        write_pdf(docs / "bees.pdf", ["Beekeeping: a hive of honey bees swarms in spring",
                                      "when the queen leaves with half the colony."])
        created = act(lab, "index", "create", "far-docs", "--host", "far", "--collection",
                      "FarDocs", "--embed-server", "emb", "--http-port", str(http),
                      "--grpc-port", str(grpc), "--source", str(docs))
        assert all(c["ok"] for c in checks(created).values()), checks(created)
        hits = json.loads(llmops(lab, "index", "query", "far-docs", "tensor parallelism "
                                 "across GPUs", "--json").stdout)["hits"]
        assert hits[0]["source"] == "gpu.md"
        # a PDF's text layer, fetched over SFTP and read with pypdf, is found like the rest
        hits = json.loads(llmops(lab, "index", "query", "far-docs", "honey bees swarm from the "
                                 "hive", "--json").stdout)["hits"]
        assert hits[0]["source"] == "bees.pdf", hits
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
    logs = json.loads(llmops(lab, "index", "logs", "run-docs", "--json", env=env).stdout)
    worker = logs.index(next(line for line in logs if line.startswith("== ingest worker")))
    assert logs[0] == "== Weaviate (index.run-docs on far) ==", logs
    assert any("ready http=18741 grpc=18742" in line for line in logs[1:worker]), logs
    assert any("chunks" in line for line in logs[worker:])  # the worker's progress lines
    assert logs[-1].startswith("result: ") and f'"count": {count}' in logs[-1], logs

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
    """The checklist against faults made behind llmops's back on its own instance: an
    embedding server that was never started (embedding dimension; the known query and the
    recall, which embed their queries, with it), objects deleted (count, known query, recall),
    the collection re-made with 3-d vectors and the same objects (vector dims; the searches
    with 384-d queries fail on it too), the collection dropped, the instance stopped."""
    import weaviate
    from weaviate.classes.data import DataObject
    from weaviate.classes.query import Filter

    from llmops.ops.kinds.index import IndexKind, IndexSpec
    from llmops.ops.kinds.index.schema import create_collection

    lab = setup.lab
    handle = start_standin(setup.root / "fault-backups")
    ghost = lab / "servers" / "never-started.toml"
    try:
        docs = write_docs(setup.root / "fault-docs")
        queries = setup.root / "fault-queries.jsonl"
        queries.write_text("".join(json.dumps(q) + "\n" for q in EVAL))
        act(lab, "index", "create", "faults", "--host", "local", "--collection", "Faults",
            "--embed-server", "emb", "--http-port", str(handle.http_port), "--grpc-port",
            str(handle.grpc_port), "--source", str(docs), "--chunk-size", "120",
            "--eval-set", str(queries), "--eval-k", "1")
        opened = Lab(lab)
        engine = Engine(opened)
        try:
            spec = opened.read_spec("index", "faults")
            assert isinstance(spec, IndexSpec)

            def failed(checked: IndexSpec = spec) -> set[str]:
                return {c.name for c in IndexKind().validate(checked, engine.hosts)
                        if not c.ok}

            assert failed() == set()
            # the same model on a port nobody serves: the data key (and the collection) match
            emb = (lab / "servers" / "emb.toml").read_text()
            ghost.write_text(re.sub(r"(?m)^port = \d+$", f"port = {free_port()}", emb))
            assert ghost.read_text() != emb
            unstarted = spec.model_copy(update={"embed_server": "never-started"})
            assert failed(unstarted) == {"embedding dimension", "known query", "recall@1"}
            ghost.unlink()
            with weaviate.connect_to_local(port=handle.http_port,
                                           grpc_port=handle.grpc_port) as client:
                faults = client.collections.get("Faults")
                every = list(faults.iterator())
                faults.data.delete_many(where=Filter.by_property("source").equal("bread.txt"))
                assert failed() == {"object count", "known query", "recall@1"}
                client.collections.delete("Faults")
                create_collection(client, spec)  # llmops's own schema, 3-d vectors in it
                client.collections.get("Faults").data.insert_many([
                    DataObject(properties=o.properties, uuid=o.uuid, vector=[0.5, 0.25, 0.125])
                    for o in every])
                assert failed() == {"vector dims", "known query", "recall@1"}
                client.collections.delete("Faults")
                assert failed() == {"collection"}
            handle.stop()
            assert failed() == {"instance ready"}
        finally:
            engine.close()
            opened.close()
    finally:
        ghost.unlink(missing_ok=True)
        handle.stop()
