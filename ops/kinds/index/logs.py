"""An index's logs (HasLogs: `llmops index logs NAME`, the console's `l`): the Weaviate that
llmops runs for it — procctl's log of the binary on its host, or `docker logs` of its
container (the container outlives its `docker run`, so docker is asked) — and the ingest
worker's on this machine (its progress lines with their times, what it wrote to stderr, and
its result). An attached instance's own log is its operator's: llmops says so instead."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.index import docker
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.worker import WorkerFiles, files_for, say

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


def weaviate_lines(spec: IndexSpec, hosts: HostPool, lines: int) -> list[str]:
    """The instance's last `lines` lines, where llmops runs it; why there are none otherwise."""
    if spec.launch == "attach":
        return [f"(attached: llmops does not run the Weaviate on {spec.host} :{spec.http_port}; "
                "its log is wherever whoever started it keeps it)"]
    try:
        t = hosts.transport(spec.host)
        if spec.launch == "binary":
            return procs.tail(t, spec.proc_name(), lines)
        return docker.logs(t, spec, lines)
    except Exception as exc:  # noqa: BLE001 - the worker's log is still worth showing
        return [f"(could not read it: {type(exc).__name__}: {exc})"]


def _stamp(at: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(at))) if at else "-"


def worker_lines(files: WorkerFiles, lines: int) -> list[str]:
    """The ingest worker's last `lines` lines: progress, stderr, then its result."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for raw in files.progress.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(raw)
                found.append(f"{_stamp(entry.get('at'))} {say(entry)}")
    with contextlib.suppress(OSError):
        found += files.log.read_text(errors="replace").splitlines()
    with contextlib.suppress(OSError, ValueError):
        answer = json.loads(files.result.read_text())
        found.append("result: " + (json.dumps(answer.get("result"), sort_keys=True)
                                   if answer.get("ok") else f"failed: {answer.get('error')}"))
    return found[-lines:] or ["(no ingest has run from this machine)"]


def index_logs(spec: IndexSpec, hosts: HostPool, lines: int = 100) -> list[str]:
    """Both logs, each under a header line that says whose it is and where."""
    how = {"attach": "attached", "binary": f"{spec.proc_name()} on {spec.host}",
           "docker": f"docker logs {docker.container(spec)} on {spec.host}"}[spec.launch]
    files = files_for(hosts, spec.name)
    return [f"== Weaviate ({how}) ==", *weaviate_lines(spec, hosts, lines),
            f"== ingest worker ({files.folder}) ==", *worker_lines(files, lines)]
