"""The index kind's checklist, run after every action and rollback: the instance answers with
a supported version; the collection holds what this spec makes (the record's data key); its
object count and vector length match the snapshot recorded when those objects were made
(ingest, or the backup a rollback restored); a known query finds its document again; the
embedding server answers with that same length."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Check
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.index import docker, records
from llmops.ops.kinds.index.embed import embed_server, embedder
from llmops.ops.kinds.index.evaluate import read_queries, record_eval, retrieval_key, run_eval
from llmops.ops.kinds.index.query import hybrid_only
from llmops.ops.kinds.index.rerank import reranker
from llmops.ops.kinds.index.schema import count_of, dims_of
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.weaviate_conn import connect, meta, supported

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

PROBE_TOP = 1


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    began = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(name, ok, detail[:500], round(time.monotonic() - began, 3))


def checklist(spec: IndexSpec, hosts: HostPool) -> list[Check]:
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    record = records.read(t, facts, spec.name)
    server = embed_server(spec, hosts)
    key = spec.data_key(server.model if server else None)
    snap: dict[str, Any] = record.get("snapshots", {}).get(key, {})
    checks = [_timed("instance ready", lambda: _ready(spec, hosts))]
    if not checks[0].ok:
        return checks
    live: dict[str, Any] = {}

    def collection() -> tuple[bool, str]:
        with connect(spec, hosts) as client:
            if not client.collections.exists(spec.collection):
                return False, f"{spec.collection} does not exist"
            live["count"] = count_of(client, spec.collection)
            live["dims"] = dims_of(client, spec.collection)
        ours = record.get("collection") == spec.collection and record.get("data_key") == key
        return ours, (f"{spec.collection} made as this spec says (data key {key})" if ours
                      else f"{spec.collection} holds data key {record.get('data_key')}, "
                      f"this spec makes {key}")

    checks.append(_timed("collection", collection))
    if "count" not in live:
        return checks
    checks.append(_timed("object count", lambda: _matches("count", live, snap, spec)))
    checks.append(_timed("vector dims", lambda: _matches("dims", live, snap, spec)))
    if snap.get("probe"):
        checks.append(_timed("known query", lambda: _probe(spec, hosts, snap["probe"])))
    if spec.embed_server:
        checks.append(_timed("embedding dimension", lambda: _embed_dims(spec, hosts, snap)))
    if spec.rerank_server:
        checks.append(_timed("reranker", lambda: _reranker(spec, hosts, snap)))
    if spec.eval_set:
        checks.append(_timed(f"recall@{spec.eval_k}", lambda: _recall(spec, hosts, record)))
    return checks


def checklist_absent(spec: IndexSpec, hosts: HostPool) -> list[Check]:
    """After a removal, the rollback of a creation or a finished revert: the Weaviate llmops
    ran for it is gone (launch = binary / docker: its data goes with it), or, attached to an
    instance llmops does not run, the collection is gone from that instance."""
    if spec.launch != "attach":
        def stopped() -> tuple[bool, str]:
            t = hosts.transport(spec.host)
            info = procs.status(t, spec.proc_name())
            if info.running:
                return False, f"{spec.proc_name()} still runs (pid {info.pid})"
            if spec.launch == "docker":
                found = docker.state(t, spec)
                if found.exists or found.error:
                    return False, (f"container {docker.container(spec)}: "
                                   f"{found.error or 'still there'}")
                return True, f"{spec.proc_name()} and container {docker.container(spec)} gone"
            return True, f"{spec.proc_name()} not running"

        return [_timed("no process left", stopped)]

    def collection_gone() -> tuple[bool, str]:
        with connect(spec, hosts, timeout=15) as client:
            there = client.collections.exists(spec.collection)
        return not there, f"{spec.collection} {'still exists' if there else 'absent'}"

    return [_timed("collection absent", collection_gone)]


def _ready(spec: IndexSpec, hosts: HostPool) -> tuple[bool, str]:
    version = str(meta(spec, hosts).get("version", ""))
    return supported(version), f"Weaviate {version} (the client needs 1.27.0 or newer)"


def _matches(what: str, live: dict[str, Any], snap: dict[str, Any],
             spec: IndexSpec) -> tuple[bool, str]:
    if what not in snap or snap[what] is None:
        if not spec.source and what == "count":
            return live["count"] == 0, f"{live['count']} objects (no source: none expected)"
        if not spec.source:
            return True, "no objects, no vectors (no source)"
        return False, f"no snapshot recorded for this spec's objects (live {what} {live[what]})"
    return live[what] == snap[what], f"{live[what]} (snapshot: {snap[what]})"


def _probe(spec: IndexSpec, hosts: HostPool, probe: dict[str, str]) -> tuple[bool, str]:
    hits = hybrid_only(spec, hosts, probe["query"], PROBE_TOP)
    sources = [h.source for h in hits]
    return probe["source"] in sources, f"{probe['query']!r} -> {sources} " \
        f"(expects {probe['source']} in the top {PROBE_TOP})"


def _recall(spec: IndexSpec, hosts: HostPool, record: dict[str, Any]) -> tuple[bool, str]:
    """The eval set's recall@k is not below the value recorded for these objects, alpha and
    k (by `llmops index eval` or an earlier checklist); the first measurement is recorded."""
    assert spec.eval_set
    t = hosts.transport(spec.host)
    result = run_eval(spec, hosts, read_queries(t, spec.eval_set))
    before = records.last_eval(record, retrieval_key(spec, hosts))
    k, now = spec.eval_k, result["recall"]
    reranked = (f"; reranked by {result['rerank']} recall@{k} {result['rerank_recall']}, "
                f"MRR {result['rerank_mrr']}" if "rerank_recall" in result else "")
    if before is None:
        record_eval(spec, hosts, result, None, "checklist")
        return True, (f"recall@{k} {now}, MRR {result['mrr']}{reranked} "
                      "(first measurement: recorded)")
    where = f"at {str(before['commit'])[:12]}" if before.get("commit") else "by a checklist"
    ok = now >= before["recall"]
    detail = f"recall@{k} {now} (recorded {before['recall']} {where}), MRR {result['mrr']}"
    if "rerank_recall" in result:
        same = before.get("rerank") == result["rerank"] and "rerank_recall" in before
        then = before.get("rerank_recall") if same else None
        ok = ok and (then is None or result["rerank_recall"] >= then)
        detail += reranked + (f" (recorded {then})" if then is not None
                              else " (none recorded)")
    return ok, detail


def _reranker(spec: IndexSpec, hosts: HostPool, snap: dict[str, Any]) -> tuple[bool, str]:
    """The rerank server answers /v1/rerank with a finite score for each document (which
    order it prefers is the model's business: a check of that would judge the model)."""
    probe = snap.get("probe") or {}
    query = probe.get("query") or "rerank probe"
    with reranker(spec, hosts, timeout=60.0) as r:
        scores = r.scores(query, [query, "zzzz qqqq xxxx"])
    finite = all(math.isfinite(x) for x in scores)
    return finite, (f"{spec.rerank_server} scores the known query's own text {scores[0]:.3f}, "
                    f"an unrelated one {scores[1]:.3f}")


def _embed_dims(spec: IndexSpec, hosts: HostPool, snap: dict[str, Any]) -> tuple[bool, str]:
    with embedder(spec, hosts, timeout=60.0) as e:
        dims = len(e.embed(["rollback check"])[0])
    want = snap.get("dims")
    if want is None:
        return dims > 0, f"{spec.embed_server} answers with {dims} dimensions"
    return dims == want, f"{spec.embed_server} answers with {dims} dimensions (index: {want})"
