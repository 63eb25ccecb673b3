"""The CLI reads its options from the spec models, completes names from the lab, and prints
the exact command a server is started with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labtools import llmops, llmops_json

from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec

PY = sys.executable


def options_of(lab: Path, *command: str) -> set[str]:
    shown = llmops(lab, *command, "--help").stdout
    return {word.split("/")[0] for word in shown.split() if word.startswith("--")}


def test_every_spec_field_is_an_option(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    server = options_of(lab, "server", "up")
    host = options_of(lab, "host", "add")
    for spec, shown, skip in ((ServerSpec, server, {"name", "args"}), (HostSpec, host, {"name"})):
        wanted = {"--" + f.replace("_", "-") for f in spec.model_fields if f not in skip}
        assert wanted <= shown, wanted - shown
    assert "--arg" in server and "--trust" in host


def test_a_list_option_names_itself_when_wrong(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    done = llmops(lab, "server", "up", "s", "--host", "local", "--model", "/m", "--gpus", "0,x",
                  check=2)
    assert "--gpus" in done.stderr and "comma-separated" in done.stderr, done.stderr
    assert not (lab / "servers").exists()


def complete(lab: Path, words: str) -> list[str]:
    env = {**os.environ, "_LLMOPS_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    entry = str(Path(sys.executable).parent / "llmops")  # click names the variable after it
    done = subprocess.run([entry], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


def test_names_complete_from_the_lab(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    (lab / "servers").mkdir()
    for name in ("alpha", "beta"):
        (lab / "servers" / f"{name}.toml").write_text('host = "local"\nmodel = "/m"\n')
    assert complete(lab, f"llmops --lab {lab} server down ") == ["alpha", "beta"]
    assert complete(lab, f"llmops --lab {lab} server logs al") == ["alpha"]
    assert complete(lab, f"llmops --lab {lab} host show ") == ["local"]
    assert complete(lab, f"llmops --lab {lab} rollback --last server/b") == ["server/beta"]


def test_server_command_is_the_argv_a_start_runs(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", PY, "--workdir", str(tmp_path / "w"))
    (lab / "servers").mkdir()
    (lab / "servers" / "demo.toml").write_text(
        'host = "local"\nmodel = "/models/tiny"\nport = 8123\nmax_model_len = 256\n')
    [command] = llmops_json(lab, "server", "command", "demo")
    argv, env = command["argv"], command["env"]
    assert command["proc"] == "demo"
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--model") + 1] == "/models/tiny"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--max-model-len") + 1] == "256"
    assert env["HF_HUB_OFFLINE"] == "1"
    text = llmops(lab, "server", "command", "demo").stdout
    assert "HF_HUB_OFFLINE=1" in text and "--model /models/tiny" in text
    llmops(lab, "server", "command", "nope", check=2)
