"""What the adapter kind does on hosts: observe, preflight, carry out plan steps.

Thin on purpose: every decision is in the pure plan (`plan.py`); this file runs it through
the host-side scripts (`store.py`) and the server's vLLM client (runtime LoRA API)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from llmops.ops.kinds.adapter import store
from llmops.ops.kinds.adapter.observed import AdapterObserved, AdapterStep
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Progress, SpecError, Step
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.server.client import VllmClient, VllmError
from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from llmops.ops.hostpool import HostPool

MERGE_MARK = "llmops-merge.json"
"""Written into a merged folder: which adapter and base made it (ops/hostside/adapter_store)."""


class Unreachable(RuntimeError):
    """The server's API did not answer through the tunnel."""


class ServerClient:
    """A vLLM client on the server's port through the host's tunnel, for a `with`."""

    def __init__(self, server: ServerSpec, hosts: HostPool, timeout: float = 60.0) -> None:
        self.server, self.hosts, self.timeout = server, hosts, timeout
        self._forward: AbstractContextManager[int] | None = None

    def __enter__(self) -> VllmClient:
        t = self.hosts.transport(self.server.host)
        self._forward = t.forward(self.server.port, reach_address(self.server))
        local = self._forward.__enter__()
        self.client = VllmClient(
            f"http://127.0.0.1:{local}", self.server.api_model(), timeout=self.timeout
        )
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        if self._forward is not None:
            self._forward.__exit__(None, None, None)


def loaded_adapters(
    server: ServerSpec, hosts: HostPool, facts: dict[str, Any]
) -> dict[str, str | None]:
    """The adapters the server serves on its base (GET /v1/models: cards whose `parent` is
    the base), by name, with the store sha their folder (`root`) names."""
    try:
        with ServerClient(server, hosts, timeout=10.0) as client:
            cards = client.model_cards()
    except (TransportError, httpx.HTTPError, OSError) as exc:
        raise Unreachable(f"server {server.name} did not answer: {exc}") from exc
    return {
        str(c["id"]): store.sha_of_root(c.get("root"), facts)
        for c in cards
        if c.get("parent") == server.api_model() and c.get("id") != server.api_model()
    }


def observe(spec: AdapterSpec, hosts: HostPool, *, verify: bool = True) -> AdapterObserved:
    """The store copy (its sha verified unless `verify` is off: a status poll), the merged
    folder, what the server has loaded, the record, and (when the store lacks it) the source."""
    server = store.server_of(spec, hosts)
    run = store.run_of(spec, hosts)
    host = store.store_host(spec, hosts)
    if host is None:
        return AdapterObserved()
    facts, found = store.inspect(hosts, host, spec, verify=verify)
    observed = AdapterObserved(
        host=host,
        store_path=store.store_path(facts, spec.sha256),
        store_sha=found.get("store_sha"),
        merged=bool(found.get("merged")),
        merged_sha=found.get("merged_sha"),
        base=server.model if server else (run.base if run else None),
        state=store.read_record(hosts.transport(host), facts, spec.name),
    )
    if server is not None:
        try:
            observed.loaded = loaded_adapters(server, hosts, facts)
            observed.server_answers = True
        except Unreachable:
            observed.server_answers = False
    if observed.store_sha != spec.sha256:
        observed.source_host, observed.source_path = locate_source(spec, hosts)
    return observed


def locate_source(spec: AdapterSpec, hosts: HostPool) -> tuple[str | None, str | None]:
    """(host, folder) holding the adapter with the spec's sha; (None, None) when none does."""
    if spec.path:
        return store.source_host(spec, hosts), spec.path
    run = store.run_of(spec, hosts)
    if run is None:
        return None, None
    found, _why = store.find_run_adapter(hosts, run, spec.sha256)
    return (found.host, found.path) if found else (None, None)


def preflight(spec: AdapterSpec, hosts: HostPool) -> None:
    """Read-only, before anything is written: the source is there with the spec's sha (unless
    the store holds it already), its rank fits the server, merge_to is free or this merge."""
    server = store.server_of(spec, hosts)  # None when the same action adds it: admit checked
    host = store.store_host(spec, hosts)
    if host is None:
        return
    facts, found = store.inspect(hosts, host, spec, verify=True)
    if found.get("merge_exists") and found.get("merged_sha") != spec.sha256:
        made = found.get("merged_sha")
        raise SpecError(
            "merge_to",
            f"{spec.merge_to} on {host} already holds "
            + (f"the merge of {made[:12]}" if made else "something llmops did not merge"),
            "merged models are never overwritten: pick a new folder",
        )
    if found.get("store_sha") == spec.sha256:
        folder = store.store_path(facts, spec.sha256)
        check_rank(spec, server, store.adapter_rank(hosts.transport(host), folder), folder)
        return
    if spec.path:
        src_host = store.source_host(spec, hosts)
        if src_host is None:
            return
        sha = store.path_sha(hosts, src_host, spec.path)
        if sha != spec.sha256:
            raise SpecError(
                "sha256",
                f"{spec.path} is {sha} on the host {src_host}, not {spec.sha256}",
                "give the sha of the folder as it is now (llmops adapter deploy fills it in)",
            )
        rank = store.adapter_rank(hosts.transport(src_host), spec.path)
        check_rank(spec, server, rank, spec.path)
        return
    run = store.run_of(spec, hosts)
    if run is None:
        return
    located, why = store.find_run_adapter(hosts, run, spec.sha256)
    if located is None:
        raise SpecError(
            "sha256",
            f"run {run.name}'s adapter {why}, not {spec.sha256}",
            "deploy the run's adapter as it is now (llmops adapter deploy --run fills it in)",
        )


def check_rank(
    spec: AdapterSpec, server: ServerSpec | None, rank: int | None, where: str
) -> None:
    """A rank above the server's max_lora_rank would be refused by vLLM at load time."""
    if server is None or rank is None:
        return
    limit = server.max_lora_rank or store.VLLM_DEFAULT_MAX_LORA_RANK
    if rank > limit:
        raise SpecError(
            "server",
            f"the adapter's rank r = {rank} ({where}) is above server {server.name}'s "
            f"max_lora_rank {limit}",
            f"raise max_lora_rank to {rank} or more on {server.name}, or use an adapter "
            f"with r <= {limit}",
        )


# -- apply --------------------------------------------------------------------------------
def payload(step: Step) -> AdapterStep:
    assert isinstance(step.data, AdapterStep), step
    return step.data


def apply(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    return HANDLERS[step.verb](step, spec, hosts, progress) or {}


def _fetch(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    data = payload(step)
    if data.host is None or data.sha is None:
        raise store.AdapterError(f"adapter {spec.name}: no host for its store")
    if data.source_host is None or data.source_path is None:
        what = f"run {spec.run}" if spec.run else f"{spec.path}"
        raise store.AdapterError(
            f"adapter {spec.name}: no copy of {data.sha[:12]} found ({what}) and the store on "
            f"{data.host} has none"
        )
    reply = store.copy_into_store(
        hosts, data.source_host, data.source_path, data.host, data.sha, progress
    )
    progress(f"{data.sha[:12]} stored at {reply.get('path')} on {data.host}")
    return {"stored": reply.get("path"), "copy_seconds": reply.get("seconds")}


def _merge(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    data = payload(step)
    assert data.host and data.store_path and data.out and data.sha
    if not data.base:
        raise store.AdapterError(
            f"adapter {spec.name}: no base model to merge into (no server and no run)"
        )
    t, facts = hosts.transport(data.host), host_facts(hosts, data.host)
    progress(f"merging {data.sha[:12]} into {data.base} -> {data.out}")
    reply = store.call(
        t, facts, "adapter_tools.py", ["merge", data.base, data.store_path, data.out],
        timeout=3600, progress=progress, env={"HF_HUB_OFFLINE": "1"},
    )
    if not reply.get("ok"):
        raise store.AdapterError(f"merge into {data.out} on {data.host}: {reply.get('error')}")
    mark = {"sha256": data.sha, "base": data.base, "adapter": spec.name, "at": time.time()}
    t.write_text(f"{data.out}/{MERGE_MARK}", json.dumps(mark, indent=1), mode=0o644)
    progress(f"merged in {reply.get('seconds')}s: {data.out}")
    return {"merged": data.out, "merge_seconds": reply.get("seconds")}


def _server(spec: AdapterSpec, hosts: HostPool, name: str | None) -> ServerSpec:
    server = hosts.desired("server", name) if name else None
    if not isinstance(server, ServerSpec):
        raise store.AdapterError(f"adapter {spec.name}: there is no server named {name}")
    return server


def _load(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Load (or reload in place) from the store; the seconds vLLM took are kept in the
    adapter's record on the host and returned for the journal."""
    data = payload(step)
    assert data.store_path and data.sha
    server = _server(spec, hosts, data.server)
    inplace = step.verb == "reload"
    with ServerClient(server, hosts, timeout=300.0) as client:
        began = time.monotonic()
        client.load_lora_adapter(spec.name, data.store_path, inplace=inplace)
        seconds = round(time.monotonic() - began, 3)
    t, facts = hosts.transport(server.host), host_facts(hosts, server.host)
    record = {
        "sha": data.sha,
        "server": server.name,
        "path": data.store_path,
        "load_seconds": seconds,
        "loaded_at": time.time(),
        "inplace": inplace,
    }
    store.write_record(t, facts, spec.name, record)
    progress(
        f"{spec.name} {'reloaded in place' if inplace else 'loaded'} into {server.name} "
        f"in {seconds:.3f}s ({data.sha[:12]})"
    )
    return {"load_seconds": seconds, "sha": data.sha, "inplace": inplace}


RESET_TRIES = 50


def _reset(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """vLLM refuses a reset while running requests hold blocks: retry for ~10 s."""
    server = _server(spec, hosts, payload(step).server)
    with ServerClient(server, hosts) as client:
        for attempt in range(1, RESET_TRIES + 1):
            if client.reset_prefix_cache():
                progress(f"prefix cache of {server.name} reset")
                return {"prefix_cache_reset": True, "tries": attempt}
            time.sleep(0.2)
    raise VllmError(f"{server.name} did not reset its prefix cache (requests held blocks)")


def _unload(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> dict[str, Any]:
    """Unload from the server the step names; one already gone (restarted) is fine."""
    name = payload(step).server
    server = hosts.desired("server", name) if name else None
    if not isinstance(server, ServerSpec):
        progress(f"server {payload(step).server} is gone: nothing to unload")
        return {}
    with ServerClient(server, hosts) as client:
        try:
            client.unload_lora_adapter(spec.name)
        except VllmError as exc:
            if " 404 " not in str(exc):
                raise
    t, facts = hosts.transport(server.host), host_facts(hosts, server.host)
    store.drop_record(t, facts, spec.name)
    progress(f"{spec.name} unloaded from {server.name}")
    return {"unloaded": spec.name}


def _forget(step: Step, spec: AdapterSpec, hosts: HostPool, progress: Progress) -> None:
    host = payload(step).host
    if host:
        store.drop_record(hosts.transport(host), host_facts(hosts, host), spec.name)


HANDLERS: dict[str, Callable[..., Any]] = {
    "fetch": _fetch,
    "merge": _merge,
    "load": _load,
    "reload": _load,
    "reset-prefix-cache": _reset,
    "unload": _unload,
    "forget": _forget,
}
