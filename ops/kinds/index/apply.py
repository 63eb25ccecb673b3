"""What the index kind does on hosts: observe, preflight, carry out plan steps.

Thin on purpose: every decision is in the pure plan (`plan.py`); this file runs it through
weaviate-client (`weaviate_conn.py`), the embedding server (`embed.py`), procctl (launch =
binary / docker) and the index's record on the host (`records.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.index import docker, records
from llmops.ops.kinds.index.embed import EmbedError, embed_server, embedder
from llmops.ops.kinds.index.launch import KEY_VARIABLE
from llmops.ops.kinds.index.observed import BackupRecord, IndexObserved, IndexStep
from llmops.ops.kinds.index.rerank import probe as probe_reranker
from llmops.ops.kinds.index.rerank import rerank_server
from llmops.ops.kinds.index.schema import count_of, create_collection, dims_of, update_ef
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.vectorizer import module_for
from llmops.ops.kinds.index.weaviate_conn import (
    Unreachable,
    api_key,
    connect,
    meta,
    supported,
    where,
)
from llmops.ops.kinds.index.worker import files_for, run_ingest
from llmops.ops.kinds.index.worker import stop as stop_worker
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class IndexError_(RuntimeError):  # noqa: N801 - IndexError is a builtin
    """A Weaviate operation failed; the message says which and why."""


READY_TIMEOUT_S = 120.0


def observe(spec: IndexSpec, hosts: HostPool, *, fingerprint: bool = True) -> IndexObserved:
    """The record on the host, llmops's process, the source's fingerprint, and (when the
    instance answers) which collections exist and the live HNSW ef."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    record = records.read(t, facts, spec.name)
    server = embed_server(spec, hosts)
    observed = IndexObserved(
        now=time.time(),
        collection=record.get("collection"),
        data_key=record.get("data_key"),
        source_fp=record.get("source_fp"),
        embed_model=server.model if server else None,
        backups={k: BackupRecord.model_validate(v)
                 for k, v in record.get("backups", {}).items()},
    )
    if spec.launch != "attach":
        info = procs.status(t, spec.proc_name())
        observed.proc_running = info.running
        if spec.launch == "docker":  # the container, not its CLI, is what serves
            found = docker.state(t, spec)
            observed.proc_running = found.running if found.error is None else info.running
            observed.error = found.error
        observed.proc_hash = record.get("launch_hash") if observed.proc_running else None
    if spec.source and fingerprint:
        observed.source_now = records.source_fingerprint(t, spec.source)
    reach = spec
    ports = record.get("ports")
    if observed.proc_running and ports:  # the instance llmops runs, where it listens now
        reach = spec.model_copy(update={"http_port": ports[0], "grpc_port": ports[1]})
    try:
        observed.version = str(meta(reach, hosts).get("version"))
        with connect(reach, hosts) as client:
            if observed.collection:
                observed.exists = client.collections.exists(observed.collection)
            observed.target_exists = client.collections.exists(spec.collection)
            if observed.exists and observed.collection == spec.collection:
                config = client.collections.get(spec.collection).config.get()
                observed.ef = _ef(config)
                observed.count = count_of(client, spec.collection)
                snap = record.get("snapshots", {}).get(observed.data_key or "", {})
                observed.dims = snap.get("dims")
        observed.reachable = True
    except (Unreachable, TransportError, SpecError) as exc:  # SpecError: the key is not set
        observed.reachable, observed.error = False, str(exc)
    if not observed.exists:
        observed.source_fp = None
    return observed


def _ef(config: Any) -> int | None:
    index = getattr(config, "vector_index_config", None)
    if index is None and getattr(config, "vector_config", None):
        first = next(iter(config.vector_config.values()))
        index = getattr(first, "vector_index_config", None)
    ef = getattr(index, "ef", None)
    return int(ef) if isinstance(ef, int) else None


def preflight(spec: IndexSpec, hosts: HostPool) -> None:
    """Read-only, before anything is written: the key's place holds one, an attached instance
    answers with a version the client supports and the modules llmops needs, the collection
    is not someone else's, and the embedding server answers (its dimension is known before
    any ingest)."""
    api_key(spec)
    if spec.launch == "attach":
        try:
            found = meta(spec, hosts)
        except Unreachable as exc:
            raise SpecError(
                "http_port", str(exc),
                "start Weaviate there (or set launch = binary / docker), check host and ports",
            ) from exc
        check_version(spec, str(found.get("version", "")))
        check_module(spec, found)
        observed = observe(spec, hosts, fingerprint=False)
        if observed.target_exists and observed.collection != spec.collection:
            raise SpecError(
                "collection",
                f"{spec.collection} exists on {where(spec)} and llmops did not make it",
                "pick another collection name (llmops never drops what it did not make)",
            )
    if spec.embed_server and embed_server(spec, hosts) is not None:
        try:
            with embedder(spec, hosts, timeout=30.0) as e:
                e.embed(["dimension probe"])
        except (EmbedError, TransportError, OSError) as exc:
            raise SpecError(
                "embed_server", f"server {spec.embed_server} did not answer /v1/embeddings: "
                f"{exc}", "check it with `llmops server list`; it needs args runner=pooling",
            ) from exc
    if spec.rerank_server and rerank_server(spec, hosts) is not None:
        probe_reranker(spec, hosts)


BACKUP_MODULE = "backup-filesystem"
"""The module every backup (the rollback of data) goes through."""


def check_module(spec: IndexSpec, found: dict[str, Any]) -> None:
    """The modules llmops relies on are enabled on the instance (/v1/meta lists them):
    backup-filesystem always (without it no destructive change could be backed up, so no
    rollback could restore), the vectorizer when the spec names one."""
    modules = sorted(found.get("modules") or {})
    if BACKUP_MODULE not in modules:
        raise SpecError(
            "launch", f"{where(spec)} has no module {BACKUP_MODULE} (its /v1/meta lists "
            f"{', '.join(modules) or 'none'}): llmops backs a collection up before every "
            "destructive change and restores that backup on rollback",
            f"start Weaviate with ENABLE_MODULES={BACKUP_MODULE} and BACKUP_FILESYSTEM_PATH="
            "<a folder>, or have llmops run it: --launch binary|docker --backup-dir DIR")
    if spec.vectorizer and spec.vectorizer not in modules:
        raise SpecError(
            "vectorizer", f"{where(spec)} has no module {spec.vectorizer} (its /v1/meta lists "
            f"{', '.join(modules) or 'none'})",
            f"start Weaviate with ENABLE_MODULES naming {spec.vectorizer} (launch = binary / "
            "docker does), or leave vectorizer out")


def check_version(spec: IndexSpec, version: str) -> None:
    if not supported(version):
        raise SpecError(
            "host", f"{where(spec)} runs Weaviate {version or '(no version)'}; the installed "
            "weaviate-client needs 1.27.0 or newer", "upgrade Weaviate (see README)",
        )


# -- apply --------------------------------------------------------------------------------
def payload(step: Step) -> IndexStep:
    assert isinstance(step.data, IndexStep), step
    return step.data


def apply(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def _start(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    env = dict(data.env)
    key = api_key(spec)
    if key:
        env[KEY_VARIABLE] = key  # the value goes to procctl on stdin, never into a record
    for folder in (spec.data_dir, spec.backup_dir):
        if folder:
            t.run(["mkdir", "-p", folder], timeout=30).check()
    info = procs.start(t, str(data.proc), list(step.argv), env=env)
    records.update(t, facts, spec.name, launch_hash=data.hash,
                   ports=[spec.http_port, spec.grpc_port])
    progress(f"{data.proc} started (pid {info.pid})")
    return {"pid": info.pid}


def _wait_ready(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
                ) -> dict[str, Any]:
    t = hosts.transport(spec.host)
    began, last = time.monotonic(), ""
    while time.monotonic() - began < READY_TIMEOUT_S:
        info = procs.status(t, spec.proc_name())
        if not info.running:
            tail = (docker.logs(t, spec, 5) if spec.launch == "docker"
                    else procs.tail(t, spec.proc_name(), 5))
            raise IndexError_(f"{spec.proc_name()} exited (rc {info.rc}): {' | '.join(tail)}")
        try:
            found = meta(spec, hosts, timeout=5.0)
        except Unreachable as exc:
            last = str(exc)
            time.sleep(0.5)
            continue
        version = str(found.get("version", ""))
        check_version(spec, version)
        check_module(spec, found)
        seconds = round(time.monotonic() - began, 2)
        progress(f"Weaviate {version} ready after {seconds}s")
        return {"ready_seconds": seconds, "version": version}
    raise IndexError_(f"{where(spec)} not ready after {READY_TIMEOUT_S:.0f}s: {last}")


def _stop(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t = hosts.transport(spec.host)
    if step.argv[:1] == ("docker",):  # the container first: it outlives its CLI
        how = docker.stop(t, spec)
        progress(f"container {docker.container(spec)} stopped ({how})")
    info = procs.stop(t, str(payload(step).proc))
    progress(f"{payload(step).proc} stopped ({info.stopped})")
    return {"stopped": info.stopped}


def _create(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    with connect(spec, hosts) as client:
        create_collection(client, spec, module_for(spec, hosts))
    records.update(t, facts, spec.name, collection=spec.collection,
                   data_key=payload(step).data_key, source_fp=None)
    progress(f"collection {spec.collection} created")
    return {"collection": spec.collection}


def _update_config(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
                   ) -> dict[str, Any]:
    ef = int(payload(step).extra["ef"])
    with connect(spec, hosts) as client:
        update_ef(client, spec.collection, ef)
    progress(f"HNSW ef of {spec.collection} set to {ef}")
    return {"ef": ef}


def _drop(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    collection = str(payload(step).collection)
    if stop_worker(files_for(hosts, spec.name)):
        progress(f"the ingest worker of {spec.name} stopped")
    with connect(spec, hosts) as client:
        client.collections.delete(collection)
    records.update(t, facts, spec.name, collection=None, data_key=None, source_fp=None)
    progress(f"collection {collection} dropped")
    return {"dropped": collection}


def _backup(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    return take_backup(spec, hosts, t, facts, str(data.collection), str(data.backup_id),
                       data.data_key, data.source_fp, progress)


def take_backup(spec: IndexSpec, hosts: HostPool, t: Any, facts: dict[str, Any],
                collection: str, backup_id: str, data_key: str | None,
                source_fp: str | None, progress: Progress) -> dict[str, Any]:
    """A filesystem backup of one collection, waited for, and recorded on the host with what
    it holds (count, dims, the data key), so a rollback knows what to restore."""
    from weaviate.backup.backup import BackupStorage

    began = time.monotonic()
    with connect(spec, hosts, timeout=600.0) as client:
        count, dims = count_of(client, collection), dims_of(client, collection)
        done = client.backup.create(backup_id=backup_id, backend=BackupStorage.FILESYSTEM,
                                    include_collections=[collection], wait_for_completion=True)
    status = str(getattr(done, "status", ""))
    if not status.endswith("SUCCESS"):
        raise IndexError_(f"backup {backup_id} of {collection}: {status} "
                          f"{getattr(done, 'error', '') or ''}")
    record = BackupRecord(collection=collection, data_key=data_key, source_fp=source_fp,
                          count=count, dims=dims, at=time.time())
    records.add_backup(t, facts, spec.name, backup_id, record.model_dump())
    seconds = round(time.monotonic() - began, 3)
    progress(f"backup {backup_id}: {count} objects of {collection} in {seconds}s")
    return {"backup_id": backup_id, "count": count, "dims": dims, "backup_seconds": seconds}


def _restore(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
             ) -> dict[str, Any]:
    from weaviate.backup.backup import BackupStorage

    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    backup_id, collection = str(data.backup_id), str(data.collection)
    began = time.monotonic()
    with connect(spec, hosts, timeout=600.0) as client:
        done = client.backup.restore(backup_id=backup_id, backend=BackupStorage.FILESYSTEM,
                                     include_collections=[collection],
                                     wait_for_completion=True)
        status = str(getattr(done, "status", ""))
        if not status.endswith("SUCCESS"):
            raise IndexError_(f"restore of {backup_id}: {status} "
                              f"{getattr(done, 'error', '') or ''}")
        count = count_of(client, collection)
    backup = records.read(t, facts, spec.name).get("backups", {}).get(backup_id, {})
    records.update(t, facts, spec.name, collection=collection, data_key=data.data_key,
                   source_fp=data.source_fp)
    records.snapshot(t, facts, spec.name, str(data.data_key),
                     {"count": backup.get("count"), "dims": backup.get("dims"),
                      **({"probe": backup["probe"]} if backup.get("probe") else {})})
    seconds = round(time.monotonic() - began, 3)
    progress(f"restored {collection} from {backup_id}: {count} objects in {seconds}s")
    return {"restored": backup_id, "count": count, "restore_seconds": seconds}


def _ingest(step: Step, spec: IndexSpec, hosts: HostPool, progress: Progress
            ) -> dict[str, Any]:
    data = payload(step)
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    result = run_ingest(spec, hosts, data.data_key, progress)
    records.update(t, facts, spec.name, collection=spec.collection, data_key=data.data_key,
                   source_fp=result["source_fp"])
    records.snapshot(t, facts, spec.name, str(data.data_key),
                     {k: result[k] for k in ("count", "dims", "probe")})
    return {k: v for k, v in result.items() if k != "probe"}


HANDLERS: dict[str, Callable[..., Any]] = {
    "start": _start,
    "wait-ready": _wait_ready,
    "stop": _stop,
    "create": _create,
    "update-config": _update_config,
    "backup": _backup,
    "drop": _drop,
    "restore": _restore,
    "ingest": _ingest,
}


def reconcile_now(spec: IndexSpec, hosts: HostPool, progress: Progress) -> None:
    """Observe, plan against the same spec, apply, and ingest even when the folder's
    fingerprint is unchanged: `llmops index ingest` (the operator asked)."""
    from llmops.ops.kinds.index.plan import plan_index

    observed = observe(spec, hosts)
    steps = plan_index(spec, spec, observed)
    if spec.source and not any(s.verb == "ingest" for s in steps):
        # asked for: read every document again (ids by content: unchanged ones cost nothing)
        steps.append(Step("ingest", f"ingest {spec.source} into {spec.collection} (asked)", (),
                          IndexStep(collection=spec.collection,
                                    data_key=spec.data_key(observed.embed_model),
                                    source_fp=observed.source_now)))
    for step in steps:
        progress(step.detail)
        apply(step, spec, hosts, progress)


def backup_before(spec: IndexSpec, current: IndexSpec | None, hosts: HostPool) -> IndexSpec:
    """The spec with `backup_id` naming a backup of what the collection holds now, when the
    change from `current` would lose it; as given otherwise (a new index, nothing there, or
    the same data key)."""
    from llmops.ops.kinds.index.plan import backup_id_for

    if current is None or not isinstance(current, IndexSpec):
        return spec
    model = embed_server(current, hosts)
    new_model = embed_server(spec, hosts)
    if (current.data_key(model.model if model else None)
            == spec.data_key(new_model.model if new_model else None)):
        return spec
    observed = observe(current, hosts, fingerprint=False)
    if not observed.exists or observed.collection is None:
        return spec
    held = observed.backed_up()
    if held is None:
        held = backup_id_for(spec.name, observed.data_key, observed.now)
        t, facts = hosts.transport(current.host), host_facts(hosts, current.host)
        take_backup(current, hosts, t, facts, observed.collection, held, observed.data_key,
                    observed.source_fp, lambda _line: None)
    return IndexSpec.model_validate({**spec.model_dump(), "backup_id": held})
