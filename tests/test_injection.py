"""Shell injection, property-based (issue 13 item 5).

Hypothesis puts hostile strings (quotes, `;`, `$()`, backticks, newlines, NULs, unicode) into
every string field of every kind's spec, found by walking the pydantic models of
`rollback.kinds.KINDS`, so a new kind is covered once it declares a base spec in `BASE` (a
test fails until it does). For each value one of two things must hold:

- validation refuses it (pydantic or SpecError) — through the CLI that is exit 2 with nothing
  written (git log and lab.db unchanged), shown for a sample of fields below; or
- it is accepted, and then (a) the lab's TOML reads back the same spec (no key or table can be
  smuggled in), (b) every string of the spec holding it reaches a real SSH host (a network-
  namespace sshd from tests/sshhosts.py) through the transport's exec path as exactly the argv
  word and environment value intended, and (c) where the kind builds launch commands
  (HasCommand: servers, runs, indexes), each command run through the same exec path and
  started detached through procctl (ops/procs.py) arrives as exactly its argv and env.

On the host a recorder python stands in for the program: it writes its argv and environment
as JSON. No vLLM starts: the plan and the transport's exec path are what quote.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import tomllib
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from labtools import git_log, llmops, local_host_lab
from sshhosts import SshHost

from llmops.ops import procs
from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.base import HasCommand, Spec, SpecError
from llmops.ops.kinds.host.probe import probe
from llmops.ops.transport import Transport
from llmops.ops.validate import walk
from llmops.rollback.kinds import KINDS

HOST = "g"
BASE: dict[str, dict[str, Any]] = {
    "host": {"address": "10.213.9.9", "key": "/keys/id_ed25519"},
    "server": {"host": HOST, "model": "/models/tiny"},
    "run": {"host": HOST, "base": "/models/tiny", "dataset": "/data/training/a.jsonl"},
    "adapter": {"server": "s", "run": "r", "sha256": "0" * 64},
    "index": {"host": HOST, "collection": "Docs", "embed_server": "e", "launch": "binary",
              "binary": "/opt/w/weaviate", "data_dir": "/srv/w", "backup_dir": "/srv/b"},
    "env": {"host": HOST, "packages": ["tinypkg==1.0"], "mode": "wheelhouse",
            "find_links": ["/srv/wheels"]},
    "gateway": {"host": HOST, "models": {"chat": ["s"], "chat2": ["t"]},
                "fallbacks": {"chat": ["chat2"]}},
    "cluster": {"head": HOST, "interface": "eth0", "resources": {"accel": 1},
                "temp_dir": "/tmp/ray-x"},
}
"""One valid spec per kind (without its name): the field under test is replaced in it."""
LOCAL_ONLY = {("host", "key"), ("host", "address")}
"""Fields only the console's machine reads (paramiko opens the key file and connects to the
address); they never reach a host's command line, so only the TOML round trip applies."""

FRAGMENTS = ["'", '"', ";", "$(id)", "`id`", "\n", "\x00", "&&", "|", "> /tmp/x", "<", "*",
             "~", "\\", " ", "$HOME", "${IFS}", "é", "𝔘", "\u202e", "--help", "-rf", "%s",
             "{x}", "\r", "\t", "#", "!", "=", ":", ",", "..", "/", "[a]", "\u2028"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
"""Any unicode but lone surrogates (which no transport can encode; see DESIGN)."""
HOSTILE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), TEXT), min_size=1, max_size=5).map(
    "".join).filter(lambda s: any(c in s for c in "'\";$`\n\x00|&<>\\ ") or len(s) > 3)
SHAPED = st.tuples(st.sampled_from(["", "/", "/data/training/", "~/", "/models/"]), HOSTILE,
                   st.sampled_from(["", ".jsonl", "/x", ".md"])).map("".join)
"""Hostile strings, also shaped as paths so the accepting branch of path fields is reached."""
RECORDER = (
    "import json, os, sys\n"
    "with open(os.environ['LLMOPS_RECORD_TO'], 'w') as fh:\n"
    "    json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, fh)\n"
)


# -- every string field of every kind ------------------------------------------------------
def _has_str(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is str:
        return True
    if origin is typing.Literal:
        return any(isinstance(a, str) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return any(_has_str(f.annotation) for f in annotation.model_fields.values())
    return any(_has_str(a) for a in typing.get_args(annotation))


def placements(annotation: Any) -> list[Callable[[str], Any]]:
    """Ways to put a string where this annotation is: as itself, in a list, as a dict's key or
    value, as a nested model's string field."""
    origin = typing.get_origin(annotation)
    if annotation is str or origin is typing.Literal:
        return [lambda v: v]
    if origin in (typing.Union, types.UnionType):
        return [p for a in typing.get_args(annotation) if a is not type(None) and _has_str(a)
                for p in placements(a)]
    if origin is list:
        return [lambda v, p=p: [p(v)] for p in placements(typing.get_args(annotation)[0])]
    if origin is dict:
        key, value = typing.get_args(annotation)
        found: list[Callable[[str], Any]] = [lambda v: {v: "1"}]
        if value is Any or _has_str(value):
            found += [lambda v: {"max-num-seqs": v}, lambda v: {"a": v}]
        return found
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [lambda v, n=n: {n: v} for n, f in annotation.model_fields.items()
                if _has_str(f.annotation)]
    return []


def string_fields(kind: str) -> list[tuple[str, Callable[[str], Any]]]:
    spec = KINDS[kind].Spec
    return [(name, place) for name, field in spec.model_fields.items()
            if _has_str(field.annotation) for place in placements(field.annotation)]


def test_every_kind_declares_a_base_spec() -> None:
    """A new kind in the registry must be added to BASE, so its fields are attacked too."""
    assert set(BASE) == set(KINDS), f"declare a base spec for {set(KINDS) - set(BASE)}"
    for kind, fields in BASE.items():
        KINDS[kind].Spec.model_validate({"name": "base", **fields})
        assert string_fields(kind), kind


# -- the host side --------------------------------------------------------------------------
class Recorder:
    """A python on the real SSH host that writes the argv and environment it was given."""

    def __init__(self, t: Transport, folder: Path) -> None:
        self.t, self.folder = t, folder
        self.script = str(folder / "recorder.py")
        (folder / "recorder.py").write_text(RECORDER)

    def run(self, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        out = self.folder / f"{uuid.uuid4().hex}.json"
        done = self.t.run([sys.executable, self.script, *argv],
                          env={**env, "LLMOPS_RECORD_TO": str(out)}, timeout=30)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(out.read_text()))

    def detached(self, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Through procctl, as every launch goes: argv and env on stdin as JSON."""
        out = self.folder / f"{uuid.uuid4().hex}.json"
        name = f"rec-{out.stem[:12]}"
        procs.start(self.t, name, [sys.executable, self.script, *argv],
                    env={**env, "LLMOPS_RECORD_TO": str(out)})
        deadline = time.monotonic() + 30
        while not out.is_file() or procs.status(self.t, name).running:
            assert time.monotonic() < deadline, procs.tail(self.t, name)
            time.sleep(0.05)
        return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def host_side(ssh_host: SshHost, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[HostPool, Recorder]]:
    folder = tmp_path_factory.mktemp("recorder")
    spec = ssh_host.spec(name=HOST)
    facts: dict[str, Any] = {}
    pool = HostPool({HOST: spec}.get, folder / "known_hosts",
                    trust={HOST: ssh_host.host_pub_fingerprint},
                    facts=lambda _name: facts or None)
    facts.update(probe(spec, pool, lambda _line: None))
    yield pool, Recorder(pool.transport(HOST), folder)
    pool.close()


# -- the property ---------------------------------------------------------------------------
def attempt(kind: str, field: str, value: Any) -> Spec | None:
    """The spec with the field set, or None when validation refuses it."""
    try:
        return KINDS[kind].Spec.model_validate({"name": "x", **BASE[kind], field: value})
    except (pydantic.ValidationError, SpecError):
        return None


def check_accepted(spec: Spec, field: str, hostile: str, pool: HostPool,
                   recorder: Recorder, *, detached: bool = False) -> None:
    kind = next(k for k, v in KINDS.items() if isinstance(spec, v.Spec))
    # (a) the TOML the lab writes reads back as the same spec
    text = tomli_w.dumps(spec.to_toml_dict())
    again = KINDS[kind].Spec.model_validate({**tomllib.loads(text), "name": spec.name})
    assert again == spec
    if (kind, field) in LOCAL_ONLY:
        return
    # (b) every string holding the value arrives as one argv word and one env value
    words = [v for _path, v in walk(spec.to_toml_dict()) if isinstance(v, str)]
    words += [k for k in (getattr(spec, "args", None) or {})]
    carrying = [w for w in words if hostile in w or w in hostile]
    if carrying:
        got = recorder.run(carrying, {"LLMOPS_VALUE": carrying[0]})
        assert got["argv"] == carrying
        assert got["env"]["LLMOPS_VALUE"] == carrying[0]
    # (c) launch commands: exactly their argv and env, by the exec path and by procctl
    k = KINDS[kind]
    if isinstance(k, HasCommand):
        for command in k.commands(spec, pool):
            env = {key: value for key, value in command.env.items()}
            got = recorder.run(command.argv, env)
            assert got["argv"] == command.argv
            assert {key: got["env"].get(key) for key in env} == env
            if detached and any(hostile in part for part in [*command.argv, *env.values()]):
                got = recorder.detached(command.argv, env)
                assert got["argv"] == command.argv
                assert {key: got["env"].get(key) for key in env} == env


@pytest.mark.parametrize("kind", sorted(BASE))
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_strings_are_refused_or_reach_the_host_exactly(
    kind: str, data: st.DataObject, host_side: tuple[HostPool, Recorder]
) -> None:
    pool, recorder = host_side
    fields = string_fields(kind)
    field, place = data.draw(st.sampled_from(fields), label="field")
    hostile = data.draw(SHAPED, label="value")
    spec = attempt(kind, field, place(hostile))
    if spec is not None:
        check_accepted(spec, field, hostile, pool, recorder)


@pytest.mark.parametrize("kind", sorted(BASE))
def test_every_string_field_refuses_shell_metacharacters_or_carries_them(
    kind: str, host_side: tuple[HostPool, Recorder]
) -> None:
    """The same, exhaustively over fields for a fixed set of classic payloads: every field is
    tried, so none is left to chance; the launch commands carrying one are also started
    detached through procctl (once per kind: it is the slow path)."""
    pool, recorder = host_side
    payloads = ["x'; touch /tmp/pwned; '", "$(touch /tmp/pwned)", "`touch /tmp/pwned`",
                "a\nb", "a\x00b", "/data/training/x;id.jsonl", "/models/a b'$(id)",
                "/srv/a b'\"$(touch /tmp/pwned)`id`;|&\n\u202e\u00e9.md"]
    accepted = 0
    for field, place in string_fields(kind):
        for payload in payloads:
            spec = attempt(kind, field, place(payload))
            if spec is not None:
                accepted += 1
                check_accepted(spec, field, payload, pool, recorder,
                               detached=payload == payloads[-1])
    assert not Path("/tmp/pwned").exists()
    print(f"{kind}: {accepted} hostile values accepted and carried exactly")


# -- through the CLI: refused is exit 2, nothing written ------------------------------------
@pytest.fixture(scope="module")
def cli_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return local_host_lab(tmp_path_factory.mktemp("inject"))


@pytest.mark.parametrize(("argv", "field"), [
    (["host", "add", "h2", "--local", "--python", "python3; touch /tmp/pwned"], "python"),
    (["host", "add", "h2", "--address", "10.0.0.1;id"], "address"),
    (["server", "up", "s", "--host", "local", "--model", "org/m;$(touch /tmp/pwned)"], "model"),
    (["server", "up", "s", "--host", "local", "--model", "/models/a'$(touch /tmp/pwned)'"],
     "model"),
    (["server", "up", "s", "--host", "local", "--model", "org/m", "--served-model-name",
      "`touch /tmp/pwned`"], "served_model_name"),
    (["server", "up", "s", "--host", "local", "--model", "org/m", "--arg",
      "max-num-seqs=1; touch /tmp/pwned"], "args"),
    (["run", "start", "r", "--host", "local", "--base", "org/m", "--dataset",
      "/data/a\nb.jsonl"], "dataset"),
])
def test_cli_refuses_hostile_fields_writing_nothing(cli_lab: Path, argv: list[str],
                                                    field: str) -> None:
    log = git_log(cli_lab)
    rows = sqlite3.connect(cli_lab / "lab.db").execute("select count(*) from events").fetchone()
    done = llmops(cli_lab, *argv, check=2)
    assert field in done.stderr, done.stderr
    assert git_log(cli_lab) == log
    assert sqlite3.connect(cli_lab / "lab.db").execute(
        "select count(*) from events").fetchone() == rows
    assert not Path("/tmp/pwned").exists()
