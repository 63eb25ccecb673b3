"""No secrets in git: the check itself, and an action refused by it with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from labtools import llmops, local_spec

from llmops.ops.validate import find_secrets


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"args": {"tokenizer-revision": "hf_" + "a" * 34}}, "args.tokenizer-revision"),
        ({"model": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"}, "model"),
        ({"args": {"chat-template": "sk-" + "x" * 40}}, "args.chat-template"),
        ({"endpoint": "https://user:hunter2@example.org/v1"}, "endpoint"),
        ({"args": {"api_key": "x"}}, "args.api_key"),
        ({"list": ["ok", "AKIA" + "A" * 16]}, "list[1]"),
    ],
)
def test_secrets_are_found(data: dict, field: str) -> None:
    assert [f for f, _ in find_secrets(data)] == [field]


@pytest.mark.parametrize(
    "data",
    [
        {"model": "meta-llama/Llama-3.1-8B", "args": {"seed": 1}},
        {"key": "~/.ssh/id_ed25519", "python": "/usr/bin/python3"},
        {"tokenizer": "hf_short"},
        {"screening": {"secret": "drop", "email": "redact"}},
    ],
)
def test_ordinary_specs_pass(data: dict) -> None:
    assert find_secrets(data) == []


def test_secret_in_a_server_arg_is_refused_and_nothing_written(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    spec = local_spec(tmp_path)
    llmops(
        lab, "host", "add", "local", "--local", "--python", spec.python, "--workdir", spec.workdir
    )
    done = llmops(
        lab,
        "server",
        "up",
        "s1",
        "--host",
        "local",
        "--model",
        "org/m",
        "--arg",
        "tokenizer-revision=hf_" + "a" * 34,
        check=2,
    )
    assert "args.tokenizer-revision" in done.stderr and "secret" in done.stderr
    assert not (lab / "servers").exists()
