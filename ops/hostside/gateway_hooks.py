"""LiteLLM callbacks shipped with llmops, copied next to a gateway's config on its host and
named there as `gateway_hooks.usage_log` (LiteLLM imports it from the config's folder).

`usage_log` appends one JSON line per request to the file named by LLMOPS_GATEWAY_USAGE:
when, the model asked for, the backend that answered, tokens, cost, whether the cache
answered, fallbacks tried and the outcome. Token and cost tracking without a database: the
console reads the lines (ops/kinds/gateway/usage.py). Stdlib and litellm only (it runs in the
gateway's venv). A failure to log never fails the request."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

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
    if not ok:
        record["error"] = str(payload.get("error_str") or kwargs.get("exception") or "")[:300]
    return record


def append(record: dict[str, Any]) -> None:
    path = os.environ.get(USAGE_ENV)
    if not path:
        return
    line = json.dumps(record, sort_keys=True) + "\n"
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


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
