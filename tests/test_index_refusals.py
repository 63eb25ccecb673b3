"""Index specs the CLI refuses before anything is written (no server needed): bad names, an
unknown or generating embedding server, ports, an API key given as a value, a key variable
not set, a keyring entry that is not there, an instance that does not answer or has no
backup-filesystem module; each exits 2, names the field and changes neither
git, the journal nor the indexes folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from test_index_support import (
    KEY,
    PY,
    assert_no_key,
    free_port,
    hand_edit,
    snapshot,
    start_standin,
)


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


def test_a_keyring_entry_not_there(lab: Path, tmp_path: Path) -> None:
    """api_key_keyring names an entry the OS keyring (a real file keyring here, chosen by
    PYTHON_KEYRING_BACKEND) does not hold: refused before any connection, naming the field
    and the command that stores it; both places at once are refused too."""
    ring_env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
                "XDG_DATA_HOME": str(tmp_path / "ring")}
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--collection", "Docs", "--http-port", str(free_port()), "--grpc-port",
            str(free_port()))
    error = refused(lab, *base, "--api-key-keyring", "llmops/weaviate", env=ring_env)["error"]
    assert "api_key_keyring" in error and "no entry llmops/weaviate" in error, error
    assert "keyring set llmops weaviate" in error
    error = refused(lab, *base, "--api-key-keyring", KEY)["error"]
    assert "api_key_keyring" in error and "SERVICE/USER" in error and KEY not in error
    error = refused(lab, *base, "--api-key-keyring", "llmops/weaviate", "--api-key-env",
                    "WEAVIATE_API_KEY")["error"]
    assert "api_key_env or api_key_keyring, not both" in error


def test_an_instance_without_the_backup_module(lab: Path, tmp_path: Path) -> None:
    """Weaviate started without backup-filesystem (its /v1/meta lists no such module) is
    refused on attach: no destructive change could be backed up, so no rollback restored."""
    handle = start_standin(None)  # no backup module
    try:
        error = refused(lab, "index", "create", "docs", "--host", "local", "--embed-server",
                        "emb", "--collection", "Docs", "--http-port", str(handle.http_port),
                        "--grpc-port", str(handle.grpc_port))["error"]
    finally:
        handle.stop()
    assert "launch" in error and "no module backup-filesystem" in error, error
    assert "ENABLE_MODULES=backup-filesystem" in error and "--backup-dir" in error




def test_docker_mounts_refuse_a_colon_or_a_tilde(lab: Path) -> None:
    """launch = docker mounts data_dir and backup_dir with `-v SRC:DST`: a ':' in SRC splits
    it, and docker never expands '~' — refused at validation, naming the field and the fix."""
    base = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
            "--collection", "Docs", "--launch", "docker", "--image",
            "semitechnologies/weaviate:1.32.4")
    error = refused(lab, *base, "--data-dir", "/srv/wv:ro", "--backup-dir", "/srv/bk")["error"]
    assert "data_dir" in error and "docker's -v SRC:DST" in error and "without ':'" in error
    error = refused(lab, *base, "--data-dir", "/srv/wv", "--backup-dir", "/srv/b:k")["error"]
    assert "backup_dir" in error and "without ':'" in error
    error = refused(lab, *base, "--data-dir", "~/wv", "--backup-dir", "/srv/bk")["error"]
    assert "data_dir" in error and "does not expand '~'" in error
    binary = ("index", "create", "docs", "--host", "local", "--embed-server", "emb",
              "--collection", "Docs", "--launch", "binary", "--binary", "/opt/w/weaviate")
    error = refused(lab, *binary, "--data-dir", "/srv/wv", "--backup-dir", "~/bk")["error"]
    assert "backup_dir" in error and "does not expand '~'" in error
