"""launch = docker against the real `docker` CLI these machines have (no docker engine runs
here): every command llmops would give docker — the `docker run` of Weaviate with its ports,
mounts, settings by name and pinned image, and the inspect / stop / rm / logs that observe and
stop it — is parsed by docker itself, which then needs its daemon; DOCKER_HOST points at a
socket nobody serves, so nothing could ever start even where a daemon runs. And docker's real
answer without a daemon is read as an error, never as "stopped".

A real run (a container serving Weaviate) is not tested: no docker engine here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from labtools import llmops
from test_index_support import hand_edit

from llmops.ops.kinds.index.docker import (
    inspect_argv,
    logs_argv,
    parse_inspect,
    remove_argv,
    stop_argv,
)
from llmops.ops.kinds.index.launch import weaviate_argv, weaviate_env
from llmops.ops.kinds.index.spec import IndexSpec

NO_DAEMON = "Cannot connect to the Docker daemon"


def test_docker_parses_every_command_llmops_gives_it(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    assert docker, "the docker CLI is part of these machines (no engine): install docker-ce-cli"
    spec = IndexSpec.model_validate({
        "name": "docs", "host": "local", "collection": "Docs", "embed_server": "emb",
        "launch": "docker", "image": "cr.weaviate.io/semitechnologies/weaviate:1.32.27",
        "data_dir": "/srv/weaviate/data", "backup_dir": "/srv/weaviate/backups",
        "api_key_env": "WEAVIATE_API_KEY", "vectorizer": "text2vec-openai"})
    env = {**os.environ, **weaviate_env(spec), "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
           "AUTHENTICATION_APIKEY_ALLOWED_KEYS": "k"}
    for argv in (weaviate_argv(spec), inspect_argv(spec), stop_argv(spec), remove_argv(spec),
                 logs_argv(spec, 5)):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        said = done.stdout + done.stderr
        assert done.returncode != 0 and NO_DAEMON in said, (argv, said)
        for bad in ("unknown flag", "unknown shorthand", "invalid", "deprecated", "requires"):
            assert bad not in said.lower(), (argv, said)
    done = subprocess.run(inspect_argv(spec), env=env, capture_output=True, text=True,
                          timeout=60)
    found = parse_inspect(done.returncode, done.stdout, done.stderr)
    assert not found.running and found.error is not None and NO_DAEMON in found.error


def test_logs_of_a_docker_index_ask_docker(tmp_path: Path) -> None:
    """`llmops index logs` of a launch = docker index runs `docker logs --tail N
    llmops-<index>` on its host through the real docker CLI; with no daemon its answer is shown
    under the Weaviate header, the ingest worker's section follows (no ingest yet)."""
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "w"))
    (lab / "indexes").mkdir()
    (lab / "indexes" / "docs.toml").write_text(
        'host = "local"\ncollection = "Docs"\nembed_server = "emb"\nlaunch = "docker"\n'
        'image = "cr.weaviate.io/semitechnologies/weaviate:1.32.27"\n'
        'data_dir = "/srv/weaviate/data"\nbackup_dir = "/srv/weaviate/backups"\n')
    hand_edit(lab, "index docs (docker)", "indexes")
    env = {"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    lines = json.loads(llmops(lab, "index", "logs", "docs", "-n", "5", "--json",
                              env=env).stdout)
    assert lines[0] == "== Weaviate (docker logs llmops-docs on local) ==", lines
    worker = lines.index(next(line for line in lines if line.startswith("== ingest worker")))
    assert NO_DAEMON in " ".join(lines[1:worker]), lines
    assert lines[worker + 1:] == ["(no ingest has run from this machine)"]
    text = llmops(lab, "index", "logs", "docs", env=env).stdout
    assert NO_DAEMON in text and "== ingest worker" in text
