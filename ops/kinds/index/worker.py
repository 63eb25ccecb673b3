"""Ingest as a detached worker on the console's machine: it outlives the console or CLI that
started it, writes its progress to a file anyone on this machine can follow, and is resumed by
the next ingest when it dies (chunks are idempotent by content hash: nothing twice).

Why here and not on the index's host: the API key lives only in this machine's environment
or OS keyring (the worker reads it from the place the spec names, never a file); the embedding
server may be on another host than Weaviate, and this machine is the one that reaches both (SSH
forwards); the host needs no weaviate-client. The files, in `<lab>/.ingest/<index>/` (ignored
by git through their own `.gitignore`): `job.json` (the specs and host addresses, no key),
`pid`, `progress.jsonl`, `result.json`, `log`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.index.embed import embed_server
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MODULE = "llmops.ops.kinds.index.worker_main"
"""The worker's entry (a module the package does not import, so `-m` runs it cleanly)."""
HOME = ".ingest"
POLL_S = 0.3
SAY_EVERY_S = 2.0
STOP_WAIT_S = 10.0


class WorkerError(TransportError):
    """The ingest worker failed; the message has its error or its log's tail."""


@dataclass(frozen=True)
class WorkerFiles:
    """Where one index's worker keeps its job, pid, progress, result and log."""

    folder: Path

    @property
    def job(self) -> Path:
        return self.folder / "job.json"

    @property
    def pid(self) -> Path:
        return self.folder / "pid"

    @property
    def progress(self) -> Path:
        return self.folder / "progress.jsonl"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def log(self) -> Path:
        return self.folder / "log"


def files_for(hosts: HostPool, name: str) -> WorkerFiles:
    """The index's worker files beside the lab (its known_hosts' folder)."""
    home = Path(hosts.known_hosts).parent / HOME
    home.mkdir(parents=True, exist_ok=True)
    ignore = home / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return WorkerFiles(home / name)


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json")) if hasattr(model, "model_dump") else dict(model)


def job_of(spec: IndexSpec, hosts: HostPool, data_key: str | None) -> dict[str, Any]:
    """What the worker needs (no key: it reads it from the variable or keyring entry the spec
    names, with the environment it inherits)."""
    server = embed_server(spec, hosts)
    names = {spec.host, *([server.host] if server else [])}
    addresses = {}
    for name in sorted(names):
        found = hosts.lookup(name)
        if found is None:
            raise TransportError(f"no host named {name!r} in the lab (llmops host add)")
        addresses[name] = _dump(found)
    job = {"spec": _dump(spec), "server": _dump(server) if server else None,
           "hosts": addresses, "known_hosts": str(hosts.known_hosts), "data_key": data_key}
    blob = json.dumps([job["spec"], job["server"], data_key], sort_keys=True).encode()
    return {**job, "key": hashlib.sha256(blob).hexdigest()[:16]}


# -- whether one runs ---------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """A live (not zombie) process running this module."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and MODULE.encode() in cmdline


def running(files: WorkerFiles) -> dict[str, Any] | None:
    """The pid record of the index's worker when it runs now; None otherwise."""
    try:
        record = json.loads(files.pid.read_text())
    except (OSError, ValueError):
        return None
    return dict(record) if _alive(int(record.get("pid", 0))) else None


def stop(files: WorkerFiles) -> bool:
    """Stop the index's worker (before its collection is dropped); True when one ran."""
    record = running(files)
    if record is None:
        return False
    pid = int(record["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def latest(files: WorkerFiles) -> dict[str, Any] | None:
    """The newest counts line of the progress file, with `running` (for the console)."""
    try:
        lines = files.progress.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if "chunks_total" in entry:
                return {**entry, "running": running(files) is not None}
    return None


# -- the acting side ----------------------------------------------------------------------
def start(spec: IndexSpec, hosts: HostPool, data_key: str | None) -> tuple[WorkerFiles,
                                                                          subprocess.Popen[bytes]]:
    """A new worker for the index's ingest, in its own session, stdin/out/err closed."""
    files = files_for(hosts, spec.name)
    files.folder.mkdir(parents=True, exist_ok=True)
    job = job_of(spec, hosts, data_key)
    for old in (files.result, files.progress):
        old.unlink(missing_ok=True)
    files.job.write_text(json.dumps(job))
    with open(files.log, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own module, argv list
            [sys.executable, "-m", MODULE, str(files.folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True, close_fds=True,
        )
    files.pid.write_text(json.dumps({"pid": proc.pid, "key": job["key"], "at": time.time()}))
    return files, proc


def say(entry: dict[str, Any]) -> str:
    """A progress line for the journal and the CLI."""
    if "line" in entry:
        return str(entry["line"])
    return (f"{entry['chunks_done']}/{entry['chunks_total']} chunks, {entry['docs_done']}/"
            f"{entry['docs_total']} documents ({entry['chunks_per_s']:.1f} chunks/s, "
            f"{entry['docs_per_s']:.2f} docs/s)")


def follow(files: WorkerFiles, proc: subprocess.Popen[bytes] | None, pid: int,
           progress: Progress) -> dict[str, Any]:
    """Pass the worker's progress on until it ends; its result, or WorkerError."""
    offset, last_said, pending = 0, 0.0, None

    def read_new() -> None:
        nonlocal offset, last_said, pending
        try:
            with open(files.progress, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        offset += len(complete)
        for raw in complete.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(raw)
                if "line" in entry:  # in order: the counts before it first
                    if pending is not None:
                        progress(say(pending))
                        last_said, pending = time.monotonic(), None
                    progress(say(entry))
                else:
                    pending = entry
        if pending is not None and time.monotonic() - last_said >= SAY_EVERY_S:
            progress(say(pending))
            last_said, pending = time.monotonic(), None

    while (proc.poll() is None) if proc is not None else _alive(pid):
        read_new()
        time.sleep(POLL_S)
    read_new()
    if pending is not None:
        progress(say(pending))
    try:
        result = json.loads(files.result.read_text())
    except (OSError, ValueError):
        tail = " | ".join(files.log.read_text(errors="replace").strip().splitlines()[-5:]) \
            if files.log.exists() else ""
        raise WorkerError(f"the ingest worker (pid {pid}) ended without a result"
                          f"{': ' + tail if tail else ''}") from None
    if not result.get("ok"):
        raise WorkerError(f"ingest: {result.get('error')}")
    return dict(result["result"])


def run_ingest(spec: IndexSpec, hosts: HostPool, data_key: str | None, progress: Progress
               ) -> dict[str, Any]:
    """The ingest step: follow the index's worker when one runs this same job (a console that
    died started it), else stop a stale one and start a new one (which skips what is in)."""
    files = files_for(hosts, spec.name)
    key = job_of(spec, hosts, data_key)["key"]
    record = running(files)
    if record is not None and record.get("key") == key:
        progress(f"following the ingest worker already running (pid {record['pid']})")
        return follow(files, None, int(record["pid"]), progress)
    if record is not None:
        progress(f"stopping an ingest worker for another spec (pid {record['pid']})")
        stop(files)
    files, proc = start(spec, hosts, data_key)
    progress(f"ingest worker started (pid {proc.pid}), progress in {files.progress}")
    return follow(files, proc, proc.pid, progress)


# -- the worker -----------------------------------------------------------------------------
def _pool(job: dict[str, Any]) -> HostPool:
    from llmops.ops.hostpool import HostPool
    from llmops.ops.kinds.host.spec import HostSpec
    from llmops.ops.kinds.server.spec import ServerSpec

    addresses = {k: HostSpec.model_validate(v) for k, v in job["hosts"].items()}
    server = ServerSpec.model_validate(job["server"]) if job.get("server") else None

    def desired(kind: str, name: str) -> Any:
        return server if server is not None and (kind, name) == ("server", server.name) else None

    return HostPool(addresses.get, Path(job["known_hosts"]), desired=desired)


def _answer(files: WorkerFiles, answer: dict[str, Any]) -> None:
    partial = files.result.with_suffix(".part")
    partial.write_text(json.dumps(answer))
    partial.replace(files.result)


def main(folder: str) -> int:
    """The worker process: the ingest, its counts to the progress file, its result last."""
    from llmops.ops.kinds.index.ingest import ingest

    files = WorkerFiles(Path(folder))
    job = json.loads(files.job.read_text())
    spec = IndexSpec.model_validate(job["spec"])
    hosts = _pool(job)
    out = open(files.progress, "a", buffering=1)  # noqa: SIM115 - the process's lifetime

    def write(entry: dict[str, Any]) -> None:
        out.write(json.dumps({"at": round(time.time(), 3), **entry}) + "\n")

    def stopped(_signum: int, _frame: Any) -> None:  # llmops stopped it (a drop, a new job)
        _answer(files, {"ok": False, "error": "the ingest worker was stopped (SIGTERM)"})
        os._exit(143)

    signal.signal(signal.SIGTERM, stopped)
    try:
        result = ingest(spec, hosts, hosts.transport(spec.host),
                        lambda line: write({"line": line}), tick=write)
        answer: dict[str, Any] = {"ok": True, "result": result}
    except Exception as exc:  # noqa: BLE001 - reported to whoever follows
        answer = {"ok": False, "error": str(exc) or type(exc).__name__}
    finally:
        hosts.close()
    _answer(files, answer)
    out.close()
    return 0 if answer["ok"] else 1
