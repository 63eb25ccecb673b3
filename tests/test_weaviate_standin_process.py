"""The Weaviate stand-in as an instance of its own: started and stopped per test (a backup
that takes time, API-key auth over REST and gRPC, a data dir kept across a restart,
auto-schema on and off), as a process (`python -m weaviate_standin`, both ways of naming it)
and as the `weaviate` binary llmops's launch = binary starts (Weaviate's flags and
environment), each driven by the real weaviate-client v4."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import weaviate
from test_weaviate_standin import REPO, TESTS, connect, docs, fill
from weaviate.classes.config import DataType, Property
from weaviate.classes.init import Auth
from weaviate.exceptions import UnexpectedStatusCodeError
from weaviate.proto.v1 import search_get_pb2, weaviate_pb2_grpc  # noqa: I001
from weaviate_standin import start_standin, write_binary


def test_backup_is_asynchronous(tmp_path: Path) -> None:
    with start_standin(0, 0, tmp_path, backup_delay=0.2) as handle, connect(handle) as c:
        c.collections.create("Slow")
        started = c.backup.create("slow-one", "filesystem")
        assert started.status.value == "STARTED"
        seen = set()
        while (status := c.backup.get_create_status("slow-one", "filesystem").status.value) \
                != "SUCCESS":
            seen.add(status)
            time.sleep(0.05)
        assert seen & {"STARTED", "TRANSFERRING", "TRANSFERRED"}


def test_auth_refused_without_the_key(tmp_path: Path) -> None:
    with start_standin(0, 0, tmp_path, api_key="s3cret") as handle:
        with pytest.raises(UnexpectedStatusCodeError, match="401"):
            connect(handle)
        with pytest.raises(UnexpectedStatusCodeError, match="invalid api key"):
            connect(handle, key="wrong")
        with connect(handle, key="s3cret") as c:
            c.collections.create("Guarded")
            assert len(c.collections.get("Guarded").query.fetch_objects().objects) == 0
        with grpc.insecure_channel(f"127.0.0.1:{handle.grpc_port}") as channel:
            stub = weaviate_pb2_grpc.WeaviateStub(channel)
            with pytest.raises(grpc.RpcError, match="invalid api key"):
                stub.Search(search_get_pb2.SearchRequest(collection="Guarded"))
    with start_standin(0, 0, tmp_path) as anonymous:  # a key sent to an open instance
        with pytest.raises(UnexpectedStatusCodeError, match="no authentication scheme"):
            connect(anonymous, key="s3cret")


def test_data_dir_survives_a_restart(tmp_path: Path) -> None:
    with start_standin(0, 0, tmp_path / "b", data_dir=tmp_path / "d") as handle:
        with connect(handle) as c:
            fill(docs(c, "Kept"))
    with start_standin(0, 0, tmp_path / "b", data_dir=tmp_path / "d") as handle:
        with connect(handle) as c:
            assert len(c.collections.get("Kept")) == 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("cwd", "module"), [(TESTS, "weaviate_standin"),
                                             (REPO, "tests.weaviate_standin")])
def test_runs_as_a_process(tmp_path: Path, cwd: Path, module: str) -> None:
    http, grpc_port = free_port(), free_port()
    env = {**os.environ, "STANDIN_KEY": "k-123"}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--http-port", str(http), "--grpc-port", str(grpc_port),
         "--backup-dir", str(tmp_path / "backups"), "--data-dir", str(tmp_path / "data"),
         "--api-key-env", "STANDIN_KEY"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"ready http={http} grpc={grpc_port}"
        with weaviate.connect_to_custom("127.0.0.1", http, False, "127.0.0.1", grpc_port, False,
                                        auth_credentials=Auth.api_key("k-123")) as c:
            coll = c.collections.create("Proc")
            coll.data.insert({"text": "hi"}, vector=[1.0, 0.0])
            assert len(coll) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (tmp_path / "data" / "standin-state.json").exists()


def test_autoschema_as_weaviate(tmp_path: Path) -> None:
    with start_standin(0, 0, tmp_path) as handle, connect(handle) as c:
        coll = c.collections.create("Loose", properties=[Property(name="text",
                                                                  data_type=DataType.TEXT)])
        coll.data.insert({"text": "x", "pages": 3, "when": "2024-01-02T03:04:05Z"})
        kinds = {p.name: p.data_type.value for p in coll.config.get().properties}
        assert kinds == {"text": "text", "pages": "number", "when": "date"}
    with start_standin(0, 0, tmp_path, autoschema=False) as handle, connect(handle) as c:
        coll = c.collections.create("Strict", properties=[Property(name="text",
                                                                   data_type=DataType.TEXT)])
        res = coll.data.insert_many([{"text": "ok"}, {"txet": "typo"}])
        assert list(res.errors) == [1] and "no such prop with name 'txet'" in \
            res.errors[1].message


def test_runs_as_the_weaviate_binary(tmp_path: Path) -> None:
    """llmops's launch = binary: `<binary> --host --port --scheme` and Weaviate's environment."""
    binary = write_binary(tmp_path / "weaviate")
    http, grpc_port = free_port(), free_port()
    env = {**os.environ, "GRPC_PORT": str(grpc_port),
           "PERSISTENCE_DATA_PATH": str(tmp_path / "data"),
           "ENABLE_MODULES": "backup-filesystem", "BACKUP_FILESYSTEM_PATH": str(tmp_path / "bk"),
           "DEFAULT_VECTORIZER_MODULE": "none", "CLUSTER_HOSTNAME": "node1",
           "QUERY_DEFAULTS_LIMIT": "25", "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
           "AUTHENTICATION_APIKEY_ENABLED": "true", "AUTHENTICATION_APIKEY_ALLOWED_KEYS": "k-9",
           "AUTHENTICATION_APIKEY_USERS": "llmops"}
    argv = [str(binary), "--host", "127.0.0.1", "--port", str(http), "--scheme", "http"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"ready http={http} grpc={grpc_port}"
        with weaviate.connect_to_custom("127.0.0.1", http, False, "127.0.0.1", grpc_port, False,
                                        auth_credentials=Auth.api_key("k-9")) as c:
            coll = c.collections.create("Bin")
            coll.data.insert_many([{"n": i} for i in range(30)])
            assert len(coll.query.fetch_objects().objects) == 25  # QUERY_DEFAULTS_LIMIT
            assert c.backup.create("b1", "filesystem", wait_for_completion=True).status.value \
                == "SUCCESS"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (tmp_path / "bk" / "b1").is_dir()
    refused = subprocess.run(argv, env={**env, "ENABLE_MODULES": "text2vec-cohere"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "text2vec-cohere" in refused.stderr  # not in the stand-in
