"""LiteLLM callbacks shipped with llmops, copied next to a gateway's config on its host and
named there as `gateway_hooks.usage_log` and `gateway_hooks.SafetyGuard` (LiteLLM imports
them from the config's folder).

`usage_log` appends one JSON line per request to the file named by LLMOPS_GATEWAY_USAGE:
when, the model asked for, the backend that answered, tokens, cost, whether the cache
answered, fallbacks tried and the outcome. Token and cost tracking without a database: the
console reads the lines (ops/kinds/gateway/usage.py). A failure to log never fails a request.

`SafetyGuard` is the guardrail of the models a gateway's spec names in `guardrails`: prompts
matching a rule of injection_rules.RULES (copied beside it) are refused (HTTP 400 naming the
rule), and secrets and PII matching SECRET_RULES are redacted from answers, streamed ones
too (LiteLLM's `incremental_diff` mode: the trailing word is held back until it is complete,
so a secret is never half sent). For the models in the spec's `guards` it also asks a guard
model (a lab classifier server, vLLM's /classify) about the request's texts before the call:
its label on top at the threshold is refused (HTTP 400, rule `guard-model`, naming the
guard); a guard that fails or times out refuses the request (HTTP 503,
`guard-model-unavailable`) or, when its spec says `on_error = "open"`, lets it through (a
line `unchecked`). Each block and each redacted answer is a usage line (`event: guardrail`).
The rules are plain data, tested without LiteLLM (tests/test_gateway_guard.py).

Stdlib, plus litellm and fastapi where they run (the gateway's venv): the rules import
without them. There, it applies gateway_patches.py (LiteLLM 1.108's per-request wastes,
copied beside it) and prints which patches took in the gateway's log."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if not __package__ and HERE not in sys.path:  # loaded by path (LiteLLM, beside the config):
    sys.path.insert(0, HERE)  # its siblings are copied beside it

if __package__:  # llmops.ops.hostside (the console, the tests)
    from llmops.ops.hostside.injection_rules import RULES
    from llmops.ops.hostside.injection_rules import first as first_injection
else:  # beside the config on the gateway's host (copied there with this file)
    from injection_rules import RULES  # type: ignore[no-redef]
    from injection_rules import first as first_injection  # type: ignore[no-redef]

try:
    from fastapi import HTTPException
    from litellm.integrations.custom_guardrail import CustomGuardrail
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # the rules alone (tests, the console): no LiteLLM here
    CustomGuardrail = CustomLogger = object  # type: ignore[assignment,misc]
    HTTPException = None  # type: ignore[assignment,misc]

USAGE_ENV = "LLMOPS_GATEWAY_USAGE"
_lock = threading.Lock()


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    params = kwargs.get("litellm_params") or {}
    return dict(params.get("metadata") or {})


def usage_record(kwargs: dict[str, Any], ok: bool) -> dict[str, Any]:
    """The line for one request, from LiteLLM's standard logging payload."""
    payload = kwargs.get("standard_logging_object") or {}
    meta = _metadata(kwargs)
    fallbacks = meta.get("attempted_fallbacks") or 0
    model = payload.get("model_group") or meta.get("model_group") or kwargs.get("model")
    record = {
        "at": round(time.time(), 3),
        "ok": ok,
        "model": model,
        "requested": meta.get("requested_model") or meta.get("model_group") or model,
        "deployment": (payload.get("model_id") or ""),
        "api_base": payload.get("api_base") or "",
        "prompt_tokens": int(payload.get("prompt_tokens") or 0),
        "completion_tokens": int(payload.get("completion_tokens") or 0),
        "cost": float(payload.get("response_cost") or 0.0),
        "cache_hit": bool(payload.get("cache_hit")),
        "fallbacks": int(fallbacks) if isinstance(fallbacks, int | float) else 0,
        "stream": bool(payload.get("stream")),
        "seconds": round(float(payload.get("response_time") or 0.0), 4),
    }
    overhead = (payload.get("hidden_params") or {}).get("litellm_overhead_time_ms")
    if isinstance(overhead, int | float):  # LiteLLM's own time in the request (the canary shows it)
        record["overhead_ms"] = round(float(overhead), 2)
    if not ok:
        record["error"] = str(payload.get("error_str") or kwargs.get("exception") or "")[:300]
    return record


_usage: dict[str, Any] = {}
"""The usage file kept open between requests (an open + close per request was ~4% of the
worker's busy time under load); reopened when the path's file is another one."""


def append(record: dict[str, Any]) -> None:
    path = os.environ.get(USAGE_ENV)
    if not path:
        return
    line = json.dumps(record, sort_keys=True) + "\n"
    with _lock:
        fh = _usage.get("fh")
        try:
            same = fh is not None and os.stat(path).st_ino == _usage["ino"]
        except OSError:  # removed: a new file
            same = False
        if not same:
            if fh is not None:
                fh.close()
            fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open on purpose
            _usage.update(fh=fh, ino=os.fstat(fh.fileno()).st_ino)
        fh.write(line)
        fh.flush()


class UsageLog(CustomLogger):
    """Appends a usage line per request, success or failure."""

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]  # noqa: ANN001
        try:
            append(usage_record(kwargs, True))
        except Exception:  # noqa: BLE001, S110 - logging never fails a request
            pass

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]  # noqa: ANN001
        try:
            append(usage_record(kwargs, False))
        except Exception:  # noqa: BLE001, S110 - logging never fails a request
            pass


usage_log = UsageLog()


if CustomLogger is not object and not __package__:  # in LiteLLM's worker, loaded by path
    import gateway_patches  # beside this file (on sys.path above): LiteLLM 1.108's patches
    from gateway_patches import master_key_auth  # noqa: F401 - the config's custom_auth

    PATCHES = gateway_patches.apply_all()
    print(f"llmops gateway patches: {json.dumps(PATCHES, sort_keys=True)}", flush=True)


# -- the guardrail's rules: plain data ------------------------------------------------------
INJECTION_RULES: tuple[tuple[str, str], ...] = tuple((r.id, r.pattern) for r in RULES)
"""(rule id, pattern) of injection_rules.RULES (the one table llmops screens with: training
data and this guardrail), matched case-insensitively and per line against every text."""

SECRET_RULES: tuple[tuple[str, str], ...] = (
    ("private-key",
     r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"),
    ("api-key", r"\bsk-(proj-|ant-)?[A-Za-z0-9_-]{16,}"),
    ("hf-token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    ("aws-access-key", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("slack-token", r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("password-in-url", r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
    ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"),
    ("card-number", r"\b\d(?:[ -]?\d){12,18}\b"),
    ("phone", r"(?<![\w+])\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}\b"),
)
"""(rule id, pattern) of what is redacted from answers, replaced by [REDACTED:<rule id>]."""

_SECRETS = [(rule, re.compile(p)) for rule, p in SECRET_RULES]
HOLD_BACK = re.compile(r"(?:\d[\d -]*)?\S*\Z")
"""The trailing word of a streamed text (and a run of digit groups before it): what may be
the start of a secret, held back until the next chunk shows where it ends."""
MAX_HOLD = 256


def injection(text: str) -> str | None:
    """The first injection rule the text matches (None: clean)."""
    return first_injection(text)


def luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> tuple[str, list[str]]:
    """The text with every secret and PII match replaced, and the rules that matched (a
    card number only when its check digit holds)."""
    hits: list[str] = []
    for rule, pattern in _SECRETS:
        def swap(m: re.Match[str], rule: str = rule) -> str:
            if rule == "card-number" and not luhn(m.group(0)):
                return m.group(0)
            hits.append(rule)
            return f"[REDACTED:{rule}]"
        text = pattern.sub(swap, text)
    return text, hits


def hold_back(text: str) -> int:
    """How many trailing characters of a streamed text to withhold for now."""
    found = HOLD_BACK.search(text)
    return min(len(found.group(0)), MAX_HOLD) if found else 0


# -- the guard model: a classifier server asked before the request ------------------------
GUARD_RULE = "guard-model"
GUARD_DOWN_RULE = "guard-model-unavailable"


def guard_verdicts(body: dict[str, Any]) -> list[tuple[str, float]]:
    """(top label, its probability) per text of vLLM's /classify answer."""
    found = []
    for row in body.get("data") or []:
        probs = [float(p) for p in row.get("probs") or []]
        if not probs:
            raise ValueError("a /classify row without probs")
        found.append((str(row.get("label")), max(probs)))
    if not found:
        raise ValueError("/classify answered no rows")
    return found


def guard_flags(guard: dict[str, Any], verdicts: list[tuple[str, float]]
                ) -> tuple[str, float] | None:
    """The first verdict that blocks: the guard's label on top, at its threshold or above."""
    for label, score in verdicts:
        if label == guard["label"] and score >= float(guard["threshold"]):
            return label, score
    return None


class SafetyGuard(CustomGuardrail):
    """Blocks prompt injection before the call, redacts secrets and PII after it (streams
    included), for the models in `llmops_models` (every model when None); asks the guard
    model of each model in `llmops_guards` before its requests."""

    streaming_transform_mode = "incremental_diff"
    streaming_sampling_rate = 1

    def __init__(self, llmops_models: list[str] | None = None,
                 llmops_guards: dict[str, dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        self.llmops_models = None if llmops_models is None else set(llmops_models)
        self.llmops_guards = dict(llmops_guards or {})
        self._counted: OrderedDict[str, None] = OrderedDict()
        self._http: Any = None
        super().__init__(**kwargs)

    def _screens(self, model: str) -> bool:
        return self.llmops_models is None or model in self.llmops_models

    async def _classify(self, guard: dict[str, Any], texts: list[str]
                        ) -> list[tuple[str, float]]:
        import httpx  # LiteLLM's own dependency, there where the guard runs

        if self._http is None:
            self._http = httpx.AsyncClient(verify=False)  # loopback/lab http: no CA bundle
        r = await self._http.post(guard["url"], json={"model": guard["model"], "input": texts},
                                  timeout=float(guard["timeout_s"]))
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        return guard_verdicts(r.json())

    async def _consult(self, model: str, texts: list[str]) -> None:
        """Ask the model's guard about the request's texts; refuse when it flags one, or
        when it fails and the guard fails closed (each refusal a usage line)."""
        guard = self.llmops_guards.get(model)
        texts = [t for t in texts if t and t.strip()]
        if not guard or not texts:
            return
        server = guard["server"]
        began = time.monotonic()
        try:
            verdicts = await self._classify(guard, texts)
        except Exception as exc:  # noqa: BLE001 - a guard that fails is the spec's call
            why = f"{type(exc).__name__}: {exc}"[:200]
            if guard.get("on_error") == "open":
                _event(model, "unchecked", [GUARD_DOWN_RULE], guard=server, error=why)
                return
            _event(model, "blocked", [GUARD_DOWN_RULE], guard=server, error=why)
            raise HTTPException(status_code=503, detail={
                "error": f"llmops guardrail: guard model {server} did not answer ({why}): "
                         f"refused (rule {GUARD_DOWN_RULE}): on_error = closed",
                "guardrail": "llmops-guard-model", "rule": GUARD_DOWN_RULE,
                "guard": server}) from None
        flagged = guard_flags(guard, verdicts)
        if flagged is None:
            return
        label, score = flagged
        ms = round(1000 * (time.monotonic() - began), 1)
        _event(model, "blocked", [GUARD_RULE], guard=server, label=label,
               score=round(score, 4), guard_ms=ms)
        raise HTTPException(status_code=400, detail={
            "error": f"llmops guardrail: guard model {server} flagged the prompt as {label} "
                     f"({score:.2f} >= {float(guard['threshold']):g}): refused (rule "
                     f"{GUARD_RULE})",
            "guardrail": "llmops-guard-model", "rule": GUARD_RULE, "guard": server,
            "label": label, "score": round(score, 4)})

    def _model(self, request_data: dict[str, Any]) -> str:
        meta = request_data.get("metadata") or {}
        return str(meta.get("model_group") or request_data.get("model") or "")

    def _once(self, key: str) -> bool:
        """True the first time a request is seen (a streamed answer is checked many times)."""
        if key in self._counted:
            return False
        self._counted[key] = None
        while len(self._counted) > 1000:
            self._counted.popitem(last=False)
        return True

    async def apply_guardrail(self, inputs, request_data, input_type, logging_obj=None):  # type: ignore[no-untyped-def]  # noqa: ANN001
        model = self._model(request_data)
        texts = list(inputs.get("texts") or [])
        if input_type == "request":
            for text in texts if self._screens(model) else ():
                rule = injection(text)
                if rule:
                    _event(model, "blocked", [rule])
                    raise HTTPException(status_code=400, detail={
                        "error": f"llmops guardrail: prompt injection refused (rule {rule})",
                        "guardrail": "llmops-safety", "rule": rule})
            await self._consult(model, texts)  # the rules first: they cost no request
            return inputs
        if not self._screens(model):
            return inputs
        found: list[str] = []
        out = []
        for text in texts:
            clean, hits = redact(text)
            out.append(clean)
            found += hits
        inputs["texts"] = out
        if request_data.get("stream"):
            inputs["stream_holdback_chars"] = [hold_back(t) for t in out]
        call = str(request_data.get("litellm_call_id") or id(request_data))
        if found and self._once(call):
            _event(model, "redacted", sorted(set(found)))
        return inputs


def _event(model: str, action: str, rules: list[str], **extra: Any) -> None:
    try:
        append({"at": round(time.time(), 3), "event": "guardrail", "model": model,
                "action": action, "rules": rules, **extra})
    except Exception:  # noqa: BLE001, S110 - counting never fails a request
        pass
