"""Where an adapter's files are, on which host, and what they hash to: the host-side scripts
(`ops/hostside/adapter_tools.py`, `adapter_store.py`, copied to <workdir>/bin/) typed here.

One place that knows the host layout of adapters: the store (<workdir>/adapters/<sha256>/),
a run's folders (<workdir>/runs/<run>/<cfg>/adapter, result.json, data/train.jsonl), and the
adapter's record (<workdir>/adapters/<name>.json)."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds import hoststate
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Progress, SpecError
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

FOLDER = "adapters"
"""Under the host's workdir: the store (one folder per sha) and one record per adapter name."""
SCRIPTS = ("adapter_tools.py", "adapter_store.py")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
VLLM_DEFAULT_MAX_LORA_RANK = 16
"""vLLM's --max-lora-rank when the server's spec leaves it unset."""


class AdapterError(RuntimeError):
    """A host-side adapter operation failed; the message says which and why."""


# -- the other resources an adapter stands on ----------------------------------------------
def server_of(spec: AdapterSpec, hosts: HostPool) -> ServerSpec | None:
    """The server's desired spec (the lab's), None when it has none or the lab has none."""
    found = hosts.desired("server", spec.server) if spec.server else None
    return found if isinstance(found, ServerSpec) else None


def run_of(spec: AdapterSpec, hosts: HostPool) -> RunSpec | None:
    found = hosts.desired("run", spec.run) if spec.run else None
    return found if isinstance(found, RunSpec) else None


def source_host(spec: AdapterSpec, hosts: HostPool) -> str | None:
    """Where the source is: the run's host, else `host`, else the server's host."""
    if spec.run:
        run = run_of(spec, hosts)
        return run.host if run else None
    if spec.host:
        return spec.host
    server = server_of(spec, hosts)
    return server.host if server else None


def store_host(spec: AdapterSpec, hosts: HostPool) -> str | None:
    """Where the store copy lives: the server's host (vLLM loads from it), else the source's."""
    server = server_of(spec, hosts)
    return server.host if server else source_host(spec, hosts)


def store_path(facts: dict[str, Any], sha: str) -> str:
    return f"{facts['workdir']}/{FOLDER}/{sha}"


def sha_of_root(root: str | None, facts: dict[str, Any]) -> str | None:
    """The sha a server's adapter was loaded from, when its folder is in the store."""
    prefix = f"{facts['workdir']}/{FOLDER}/"
    if root and root.startswith(prefix) and SHA_RE.match(root[len(prefix):].rstrip("/")):
        return root[len(prefix):].rstrip("/")
    return None


# -- the adapter's record on the host --------------------------------------------------------
def read_record(t: Transport, facts: dict[str, Any], name: str) -> dict[str, Any]:
    state = hoststate.read_state(t, facts, FOLDER, name)
    return {k: v for k, v in state.items() if k != "procs"}


def write_record(t: Transport, facts: dict[str, Any], name: str, record: dict[str, Any]) -> None:
    hoststate.write_state(t, facts, FOLDER, name, record)


def drop_record(t: Transport, facts: dict[str, Any], name: str) -> None:
    t.run(["rm", "-f", hoststate.state_path(facts, FOLDER, name)], timeout=30)


# -- host-side scripts ------------------------------------------------------------------------
def install_scripts(t: Transport, facts: dict[str, Any]) -> str:
    """Copy the adapter scripts to <workdir>/bin/ (the store script imports the sha from its
    neighbour, so both hosts and the trainer agree on one definition); returns the folder."""
    folder = f"{facts['workdir']}/bin"
    for name in SCRIPTS:
        t.write_text(f"{folder}/{name}", files("llmops.ops.hostside").joinpath(name).read_text(),
                     mode=0o644)
    return folder


def call(
    t: Transport,
    facts: dict[str, Any],
    script: str,
    args: list[str],
    *,
    timeout: float = 600.0,
    progress: Progress | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one host-side operation with the host's python; its last stdout line is JSON."""
    folder = install_scripts(t, facts)
    argv = [str(facts.get("python") or t.python), f"{folder}/{script}", *args]
    if progress is None:
        done = t.run(argv, timeout=timeout, env=env)
        lines = done.stdout.strip().splitlines()
        rc, tail = done.returncode, (done.stderr or done.stdout).strip().splitlines()[-3:]
    else:
        lines = []

        def keep(line: str) -> None:
            lines.append(line)
            if not line.startswith("{"):
                progress(line[:300])

        rc = t.stream(argv, keep, timeout=timeout, env=env)
        tail = lines[-3:]
    try:
        reply = dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        raise AdapterError(
            f"{script} {args[0] if args else ''} on {t.host} failed (exit {rc}): "
            f"{' | '.join(tail) or 'no output'}"
        ) from None
    reply.setdefault("ok", rc == 0)
    return reply


def folder_sha(t: Transport, facts: dict[str, Any], path: str) -> str | None:
    """sha256 over an adapter folder's files on the host (None: no adapter there)."""
    reply = call(t, facts, "adapter_tools.py", ["sha", path], timeout=600)
    return str(reply["sha256"]) if reply.get("ok") else None


# -- a run's adapter ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunAdapter:
    """A run's adapter folder with a given sha: which training config made it."""

    host: str
    path: str
    cfg: str
    probe_prompt: str | None


def run_dir(facts: dict[str, Any], run: str) -> str:
    return f"{facts['workdir']}/runs/{run}"


def find_run_adapter(hosts: HostPool, run: RunSpec, sha: str) -> tuple[RunAdapter | None, str]:
    """The run's adapter with this sha (its current config first, then older ones); else
    None and what the current config's adapter hashes to (or why there is none)."""
    t, facts = hosts.transport(run.host), host_facts(hosts, run.host)
    reply = call(t, facts, "adapter_store.py", ["find-run", run_dir(facts, run.name), sha])
    if reply.get("ok"):
        return RunAdapter(run.host, reply["path"], reply["cfg"], reply.get("probe_prompt")), ""
    current = reply.get("current_sha")
    if current:
        return None, f"is {current} on {run.host}"
    return None, f"has no finished adapter on {run.host} ({reply.get('error', '')})"


def run_result(hosts: HostPool, run: RunSpec) -> tuple[str, dict[str, Any] | None]:
    """The run's current training config and its result.json (None: not done yet)."""
    t, facts = hosts.transport(run.host), host_facts(hosts, run.host)
    folder = run_dir(facts, run.name)
    try:
        cfg = t.read_text(f"{folder}/current").strip()
    except TransportError:
        return "", None
    try:
        return cfg, dict(json.loads(t.read_text(f"{folder}/{cfg}/result.json")))
    except (TransportError, ValueError):
        return cfg, None


def run_sha(hosts: HostPool, run: RunSpec) -> str:
    """The sha of the run's final adapter (its current config's); SpecError when not done."""
    cfg, result = run_result(hosts, run)
    if result is None:
        where = f"config {cfg}" if cfg else "any config"
        raise SpecError(
            "run",
            f"run {run.name} is not done: no result.json for {where} on {run.host}",
            "wait until `llmops run list` shows it done, or give --path",
        )
    sha = result.get("sha256")
    if not sha:
        t, facts = hosts.transport(run.host), host_facts(hosts, run.host)
        sha = folder_sha(t, facts, f"{run_dir(facts, run.name)}/{cfg}/adapter")
    if not sha:
        raise SpecError("run", f"run {run.name}'s config {cfg} has no adapter on {run.host}")
    return str(sha)


def path_sha(hosts: HostPool, host: str, path: str) -> str:
    """The sha of an adapter folder on a host; SpecError naming the path when there is none."""
    t, facts = hosts.transport(host), host_facts(hosts, host)
    reply = call(t, facts, "adapter_tools.py", ["sha", path])
    if not reply.get("ok"):
        raise SpecError(
            "path",
            f"{path} on {host} is not an adapter folder: {reply.get('error', '')}",
            "give the folder holding adapter_config.json and adapter_model.safetensors",
        )
    return str(reply["sha256"])


def probe_prompt(hosts: HostPool, run: RunSpec, found: RunAdapter) -> str | None:
    """A prompt from the run's training set: result.json's probe_prompt, else the first row of
    the screened train.jsonl, cut to the part a prompt is (the prompt field, the first user
    message, or the first half of a text)."""
    if found.probe_prompt:
        return found.probe_prompt
    t = hosts.transport(found.host)
    folder = found.path.rsplit("/", 1)[0]
    done = t.run(["head", "-n", "1", f"{folder}/data/train.jsonl"], timeout=30)
    try:
        row = json.loads(done.stdout)
    except ValueError:
        return None
    return prompt_of_row(row, run)


def prompt_of_row(row: dict[str, Any], run: RunSpec) -> str | None:
    """The prompt part of a training row, in the run's data format."""
    if run.prompt_field and isinstance(row.get(run.prompt_field), str):
        return str(row[run.prompt_field])
    if run.messages_field and isinstance(row.get(run.messages_field), list):
        users = [m.get("content") for m in row[run.messages_field]
                 if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[0]) if users and users[0] else None
    text = row.get(run.text_field or "text")
    if isinstance(text, str) and text:
        words = text.split()
        return " ".join(words[: max(1, len(words) // 2)])
    return None


# -- copies -------------------------------------------------------------------------------------
def copy_into_store(
    hosts: HostPool,
    src_host: str,
    src: str,
    host: str,
    sha: str,
    progress: Progress,
) -> dict[str, Any]:
    """Copy an adapter folder into the store on `host`, verified by sha. Across hosts the
    files travel through this machine (get to a temporary folder, put to the host)."""
    t, facts = hosts.transport(host), host_facts(hosts, host)
    root = f"{facts['workdir']}/{FOLDER}"
    if src_host == host:
        reply = call(t, facts, "adapter_store.py", ["copy", src, root, sha])
    else:
        st, sfacts = hosts.transport(src_host), host_facts(hosts, src_host)
        listed = call(st, sfacts, "adapter_store.py", ["files", src])
        if not listed.get("ok"):
            raise AdapterError(f"{src} on {src_host}: {listed.get('error')}")
        if listed["sha256"] != sha:
            raise AdapterError(f"{src} on {src_host} is {listed['sha256']}, not {sha}")
        incoming = f"{root}/.incoming-{sha}-remote"
        with tempfile.TemporaryDirectory(prefix="llmops-adapter-") as tmp:
            for rel in listed["files"]:
                local = Path(tmp) / rel
                st.get(f"{src}/{rel}", local)
                t.put(local, f"{incoming}/{rel}")
                progress(f"copied {rel} ({local.stat().st_size} bytes) {src_host} -> {host}")
        reply = call(t, facts, "adapter_store.py", ["adopt", incoming, root, sha])
    if not reply.get("ok"):
        raise AdapterError(f"copy of {sha[:12]} into the store on {host}: {reply.get('error')}")
    return reply


def inspect(
    hosts: HostPool, host: str, spec: AdapterSpec, *, verify: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the host's facts, what the store copy and merge_to hold). Without `verify` the store
    copy is taken to be what its folder's name says when it has an adapter_config.json (a
    status poll, which should not hash a large adapter every few seconds)."""
    t, facts = hosts.transport(host), host_facts(hosts, host)
    request = {
        "store": store_path(facts, spec.sha256),
        "merge_to": spec.merge_to,
        "verify": verify,
    }
    reply = call(t, facts, "adapter_store.py", ["inspect", json.dumps(request)])
    if not reply.get("ok"):
        raise AdapterError(f"inspecting the store on {host}: {reply.get('error')}")
    return facts, reply


def adapter_rank(t: Transport, path: str) -> int | None:
    """The rank `r` in an adapter folder's adapter_config.json (None: unreadable)."""
    try:
        return int(json.loads(t.read_text(f"{path}/adapter_config.json"))["r"])
    except (TransportError, ValueError, KeyError, TypeError):
        return None
