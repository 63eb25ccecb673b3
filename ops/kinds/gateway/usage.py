"""Token and cost tracking without a database: the usage lines the gateway's callback appends
on its host (ops/hostside/gateway_hooks.py), read from an offset by a small host-side script,
summed here per model (pure): requests, errors, tokens, cost, cache hits, fallbacks.

`UsageSampler` is the gateway's telemetry (HasTelemetry): it keeps its offset and running
totals between polls, so each poll reads only the new lines."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Metric
from llmops.ops.kinds.gateway.launch import usage_path
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.transport import Transport, TransportError

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

READ_SCRIPT = """\
import json, os, sys
path, offset, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    size = os.path.getsize(path)
except OSError:
    print(json.dumps({"offset": 0, "lines": []})); sys.exit(0)
if offset > size:
    offset = 0
with open(path, "rb") as fh:
    fh.seek(offset)
    data = fh.read(limit)
end = data.rfind(b"\\n") + 1
print(json.dumps({"offset": offset + end,
                  "lines": data[:end].decode("utf-8", "replace").splitlines()}))
"""
READ_LIMIT = 4 * 1024 * 1024

METRICS = (
    Metric("req_per_s", "req/s", "{:.2f}"),
    Metric("tokens_per_s", "tok/s", "{:.1f}"),
    Metric("cost", "cost", "{:.6f}"),
    Metric("errors", "errors", "{:.0f}"),
    Metric("cache_hit_pct", "cache %", "{:.0f}"),
    Metric("fallbacks", "fallbacks", "{:.0f}"),
    Metric("blocked", "blocked", "{:.0f}"),
)


@dataclass
class ModelUsage:
    """What one model name answered, summed."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cache_hits: int = 0
    fallbacks: int = 0
    blocked: int = 0
    """Requests the guardrail refused (prompt injection)."""
    redacted: int = 0
    """Answers the guardrail redacted secrets or PII from."""
    unchecked: int = 0
    """Requests let through without their guard model's verdict (it failed; on_error open)."""
    backends: dict[str, int] = field(default_factory=dict)


@dataclass
class Usage:
    """Totals over the lines read so far, per model and overall."""

    models: dict[str, ModelUsage] = field(default_factory=dict)
    first_at: float | None = None
    last_at: float | None = None

    def add(self, record: dict[str, Any]) -> None:
        m = self.models.setdefault(str(record.get("model") or "?"), ModelUsage())
        if record.get("event") == "guardrail":  # the guard's own line, beside the request's
            m.blocked += record.get("action") == "blocked"
            m.redacted += record.get("action") == "redacted"
            m.unchecked += record.get("action") == "unchecked"
            return
        m.requests += 1
        if not record.get("ok"):
            m.errors += 1
        m.prompt_tokens += int(record.get("prompt_tokens") or 0)
        m.completion_tokens += int(record.get("completion_tokens") or 0)
        m.cost += float(record.get("cost") or 0.0)
        m.cache_hits += 1 if record.get("cache_hit") else 0
        m.fallbacks += 1 if (record.get("fallbacks") or 0) > 0 else 0
        base = str(record.get("api_base") or "")
        if base and record.get("ok"):
            base = base.removesuffix("/chat/completions")
            m.backends[base] = m.backends.get(base, 0) + 1
        at = record.get("at")
        if isinstance(at, int | float):
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)

    def total(self) -> ModelUsage:
        out = ModelUsage()
        for m in self.models.values():
            for key in ("requests", "errors", "prompt_tokens", "completion_tokens",
                        "cache_hits", "fallbacks", "blocked", "redacted", "unchecked"):
                setattr(out, key, getattr(out, key) + getattr(m, key))
            out.cost += m.cost
        return out

    def to_dict(self) -> dict[str, Any]:
        total = asdict(self.total())
        total.pop("backends")
        return {"models": {k: {**asdict(v), "cost": round(v.cost, 8)}
                           for k, v in sorted(self.models.items())},
                "total": {**total, "cost": round(total["cost"], 8)},
                "first_at": self.first_at, "last_at": self.last_at}


def parse(lines: list[str]) -> list[dict[str, Any]]:
    """The records among the lines (a line cut short or not JSON is skipped)."""
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def summed(records: list[dict[str, Any]]) -> Usage:
    usage = Usage()
    for r in records:
        usage.add(r)
    return usage


def read_lines(t: Transport, path: str, offset: int) -> tuple[list[str], int]:
    done = t.python_script(READ_SCRIPT, [path, str(offset), str(READ_LIMIT)], timeout=60)
    done.check()
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    return list(reply["lines"]), int(reply["offset"])


def read_usage(spec: GatewaySpec, hosts: HostPool) -> tuple[Usage, list[dict[str, Any]]]:
    """Every usage line of the gateway, summed, and the last 20 records."""
    t, facts = hosts.transport(spec.host), host_facts(hosts, spec.host)
    path, offset, records = usage_path(spec, facts), 0, []
    while True:
        lines, new = read_lines(t, path, offset)
        records += parse(lines)
        if new == offset or not lines:
            break
        offset = new
    return summed(records), records[-20:]


class UsageSampler:
    """One gateway's telemetry: rates since the last poll, running totals of the rest."""

    def __init__(self, spec: GatewaySpec, hosts: HostPool) -> None:
        self.spec, self.hosts = spec, hosts
        self.offset: int | None = None
        self.usage = Usage()
        self.at = time.monotonic()

    def sample(self) -> dict[str, float | None] | None:
        try:
            t, facts = self.hosts.transport(self.spec.host), host_facts(self.hosts,
                                                                        self.spec.host)
            lines, offset = read_lines(t, usage_path(self.spec, facts), self.offset or 0)
        except (TransportError, OSError, ValueError, KeyError):
            return None
        fresh = parse(lines)
        now = time.monotonic()
        first = self.offset is None
        self.offset = offset
        for r in fresh:
            self.usage.add(r)
        elapsed, self.at = max(now - self.at, 1e-3), now
        total = self.usage.total()
        rate = 0.0 if first else len(fresh) / elapsed
        tokens = 0.0 if first else sum(int(r.get("prompt_tokens") or 0)
                                       + int(r.get("completion_tokens") or 0)
                                       for r in fresh) / elapsed
        return {"req_per_s": round(rate, 3), "tokens_per_s": round(tokens, 2),
                "cost": round(total.cost, 8), "errors": float(total.errors),
                "cache_hit_pct": (100.0 * total.cache_hits / total.requests
                                  if total.requests else None),
                "fallbacks": float(total.fallbacks), "requests": float(total.requests),
                "blocked": float(total.blocked)}

    def close(self) -> None:
        """Nothing to release."""


MINUTE_FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost",
                 "cache_hits", "fallbacks", "blocked", "redacted", "unchecked")
"""What a minute of one model holds (lab.db's `gateway_usage`, rollback/gateways.py)."""


def per_minute(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, float]]:
    """(pure) The records summed per (model, minute start in epoch seconds); a record without
    its time is left out (every line the callback writes has one)."""
    found: dict[tuple[str, int], dict[str, float]] = {}
    for r in records:
        at = r.get("at")
        if not isinstance(at, int | float):
            continue
        key = (str(r.get("model") or "?"), int(at // 60) * 60)
        m = found.setdefault(key, dict.fromkeys(MINUTE_FIELDS, 0.0))
        if r.get("event") == "guardrail":
            m["blocked"] += r.get("action") == "blocked"
            m["redacted"] += r.get("action") == "redacted"
            m["unchecked"] += r.get("action") == "unchecked"  # the guard failed open
            continue
        m["requests"] += 1
        m["errors"] += not r.get("ok")
        m["prompt_tokens"] += int(r.get("prompt_tokens") or 0)
        m["completion_tokens"] += int(r.get("completion_tokens") or 0)
        m["cost"] += float(r.get("cost") or 0.0)
        m["cache_hits"] += bool(r.get("cache_hit"))
        m["fallbacks"] += (r.get("fallbacks") or 0) > 0
    return found


def usage_file(spec: GatewaySpec, hosts: HostPool) -> str:
    """Where the gateway's callback appends its usage lines on its host."""
    return usage_path(spec, host_facts(hosts, spec.host))


def read_new(spec: GatewaySpec, hosts: HostPool, path: str, offset: int
             ) -> tuple[list[str], int]:
    """The whole lines of `path` after `offset` and the offset after them: one host-side
    read of at most READ_LIMIT bytes (a file shorter than `offset` is read from 0)."""
    return read_lines(hosts.transport(spec.host), path, offset)
