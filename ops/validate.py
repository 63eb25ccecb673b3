"""Input checks shared by every kind: nothing that looks like a secret may reach the lab's git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from llmops.ops.secretref import KEYRING_REF

SECRET_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("an AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b")),
    ("a password in a URL", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
]
SECRET_KEYS = re.compile(r"(^|[-_.])(api[-_]?key|token|secret|password|passwd)($|[-_.])", re.I)
CHOICES = frozenset({"drop", "keep", "redact"})
"""Values a field named like a secret takes as a choice, not as a credential: a run's
`screening.secret = "drop"` says what becomes of rows that hold secrets."""
ENV_REFERENCE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
"""A field named `..._env` holding an upper-case variable name names where a secret lives (an
index's `api_key_env = "WEAVIATE_API_KEY"`): a reference, not a credential."""


def is_reference(leaf: str, value: Any) -> bool:
    """A field that names where a secret lives: `..._env` = a variable's name, `..._keyring` =
    an OS keyring entry's SERVICE/USER (ops/secretref)."""
    if not isinstance(value, str):
        return False
    if leaf.endswith("_env"):
        return bool(ENV_REFERENCE.match(value))
    return leaf.endswith("_keyring") and bool(KEYRING_REF.fullmatch(value))


def walk(data: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted field path, leaf value) of nested dicts and lists."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, data


def find_secrets(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields whose value looks like a credential: (field, what it looks like)."""
    found = []
    for field, value in walk(data):
        leaf = field.rsplit(".", 1)[-1]
        reference = is_reference(leaf, value)
        if (SECRET_KEYS.search(leaf) and value not in (None, "", False) and value not in CHOICES
                and not reference):
            found.append((field, f"a field named {leaf!r}"))
            continue
        if isinstance(value, str):
            for what, pattern in SECRET_PATTERNS:
                if pattern.search(value):
                    found.append((field, what))
                    break
    return found
