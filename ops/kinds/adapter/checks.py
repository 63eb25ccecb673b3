"""The adapter kind's checklist, run after every action and rollback: does the server really
serve this version? Listed on the server's base with the store folder of this sha, a
completion through it answers, and differs from the base's on a prompt from its training set
(an adapter that changes nothing, e.g. a fresh LoRA with B = 0, fails), and the store copy on
the host still hashes to the spec's sha."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmops.ops.kinds.adapter import store
from llmops.ops.kinds.adapter.apply import MERGE_MARK, ServerClient, loaded_adapters
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Check
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.ops.kinds.server.spec import ServerSpec

PROBE_TOKENS = 16
FALLBACK_PROMPTS = ("Hello", "The quick brown fox", "Once upon a time")
"""For an adapter given by path (no training set known): any one of them must differ."""


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    began = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(name, ok, detail[:500], round(time.monotonic() - began, 3))


def checklist(spec: AdapterSpec, hosts: HostPool) -> list[Check]:
    checks = [_timed("sha on the host", lambda: check_store(spec, hosts))]
    if spec.merge_to:
        checks.append(_timed("merged model", lambda: check_merged(spec, hosts)))
    if spec.server is None:
        return checks
    server = store.server_of(spec, hosts)
    if server is None:
        return [*checks, Check("listed", False, f"there is no server {spec.server} in the lab")]
    try:
        opened = ServerClient(server, hosts)
        client = opened.__enter__()
    except (TransportError, OSError) as exc:
        return [*checks, Check("listed", False, f"no tunnel to {server.name}: {exc}")]
    try:
        checks.append(_timed("listed", lambda: check_listed(spec, server, client, hosts)))
        checks.append(_timed("completion", lambda: check_completion(spec, client)))
        checks.append(
            _timed("differs from the base", lambda: check_differs(spec, client, hosts))
        )
    finally:
        opened.__exit__(None, None, None)
    return checks


def check_store(spec: AdapterSpec, hosts: HostPool) -> tuple[bool, str]:
    host = store.store_host(spec, hosts)
    if host is None:
        return False, "no host for the store (its server or run is not in the lab)"
    t, facts = hosts.transport(host), host_facts(hosts, host)
    folder = store.store_path(facts, spec.sha256)
    got = store.folder_sha(t, facts, folder)
    return got == spec.sha256, f"{folder} on {host}: " + (got or "missing")


def check_merged(spec: AdapterSpec, hosts: HostPool) -> tuple[bool, str]:
    """A model folder (config.json, safetensors) marked as the merge of this sha."""
    host = store.store_host(spec, hosts)
    assert host is not None and spec.merge_to
    t = hosts.transport(host)
    done = t.run(["ls", "-1", spec.merge_to], timeout=30)
    names = set(done.stdout.split())
    weights = sorted(n for n in names if n.endswith(".safetensors"))
    mark = json.loads(t.read_text(f"{spec.merge_to}/{MERGE_MARK}"))
    ok = "config.json" in names and bool(weights) and mark.get("sha256") == spec.sha256
    return ok, f"{spec.merge_to}: config.json {'config.json' in names}, {weights[:3]}, " \
        f"merge of {str(mark.get('sha256'))[:12]}"


def check_listed(
    spec: AdapterSpec, server: ServerSpec, client: VllmClient, hosts: HostPool
) -> tuple[bool, str]:
    """/v1/models lists the name on the server's base, loaded from this sha's store folder."""
    facts = host_facts(hosts, server.host)
    cards = {str(c["id"]): c for c in client.model_cards()}
    card = cards.get(spec.name)
    if card is None:
        return False, f"{spec.name} not in /v1/models ({', '.join(cards)})"
    want = store.store_path(facts, spec.sha256)
    ok = card.get("parent") == server.api_model() and card.get("root") == want
    return ok, f"root {card.get('root')}, parent {card.get('parent')}"


def check_completion(spec: AdapterSpec, client: VllmClient) -> tuple[bool, str]:
    done = client.completion("Hello", max_tokens=8, model=spec.name)
    return done.tokens > 0, f"{done.tokens} tokens: {done.text!r}"


def probe_prompts(spec: AdapterSpec, hosts: HostPool) -> list[str]:
    """A prompt from the run's training set, else the fallbacks."""
    run = store.run_of(spec, hosts)
    if run is not None:
        found, _why = store.find_run_adapter(hosts, run, spec.sha256)
        prompt = store.probe_prompt(hosts, run, found) if found else None
        if prompt:
            return [prompt]
    return list(FALLBACK_PROMPTS)


def check_differs(spec: AdapterSpec, client: VllmClient, hosts: HostPool) -> tuple[bool, str]:
    """Greedy completions through the adapter and through the base differ on a training
    prompt: an adapter that changes nothing was not worth deploying (or is not loaded)."""
    seen = []
    for prompt in probe_prompts(spec, hosts):
        tuned = client.completion(prompt, PROBE_TOKENS, model=spec.name).text
        base = client.completion(prompt, PROBE_TOKENS).text
        if tuned != base:
            return True, f"on {prompt[:40]!r}: adapter {tuned[:40]!r}, base {base[:40]!r}"
        seen.append(f"{prompt[:30]!r} -> {base[:30]!r}")
    return False, "the same as the base on " + "; ".join(seen)


def checklist_absent(spec: AdapterSpec, hosts: HostPool) -> list[Check]:
    """Not served any more (the server no longer lists it); a store copy once made stays (the
    store's ledger tells a copy gone from one never made)."""
    checks = []
    server = store.server_of(spec, hosts)
    if spec.server and server is not None:
        def unlisted() -> tuple[bool, str]:
            facts = host_facts(hosts, server.host)
            names = loaded_adapters(server, hosts, facts)
            return spec.name not in names, f"{server.name} serves {sorted(names) or 'none'}"

        checks.append(_timed("not listed", unlisted))
    host = store.store_host(spec, hosts)
    if host is not None:
        def kept() -> tuple[bool, str]:
            facts = host_facts(hosts, host)
            folder = store.store_path(facts, spec.sha256)
            t = hosts.transport(host)
            there = t.run(["test", "-f", f"{folder}/adapter_config.json"], timeout=30)
            if there.returncode == 0:
                return True, f"{folder} on {host}"
            ledger = f"{folder.rsplit('/', 1)[0]}/placed.log"
            placed = t.run(["grep", "-qx", spec.sha256, ledger], timeout=30)
            if placed.returncode == 0:
                return False, f"{folder} on {host} was placed in the store and is gone"
            return True, f"never copied to {host} (the action ended before its copy)"

        checks.append(_timed("store copy kept", kept))
    return checks
