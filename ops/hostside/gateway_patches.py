"""Narrow patches of LiteLLM 1.108's per-request work, applied inside a gateway's worker by
gateway_hooks.py (copied beside it on the host, beside the config). Each removes a measured
waste (py-spy of the gunicorn worker under benchmarks/gateway.py's load) and keeps what the
request does: each checks that the code it replaces is the code it knows, and changes
nothing otherwise (a LiteLLM upgrade must re-check them: DESIGN, "Gateways, phase 3").
tests/test_gateway_live.py probes each in the gateway's venv. `master_key_auth` is the
gateway's key check (the config's `custom_auth`), in place of LiteLLM's per-request
virtual-key checks."""

from __future__ import annotations

import contextvars
import functools
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


def skip_dead_otel_seed() -> bool:
    """LiteLLM 1.108's auth calls `_seed_request_destinations` on every request; without
    `opentelemetry.sdk` installed (it is not part of litellm[proxy]) its import fails, so
    Python searches for and re-executes the OTel modules each time, and the function always
    ends in its `except` doing nothing: ~7% of the worker's busy time here (py-spy). Where
    the SDK is missing, that call is replaced by what it does then: nothing. With the SDK
    installed nothing is changed."""
    import importlib.util

    try:
        if importlib.util.find_spec("opentelemetry.sdk") is not None:
            return False
    except (ImportError, ValueError):
        pass  # no `opentelemetry` at all: the same dead import
    try:
        from litellm.proxy.auth import user_api_key_auth as auth
    except ImportError:
        return False
    if not callable(getattr(auth, "_seed_request_destinations", None)):
        return False
    auth._seed_request_destinations = lambda *_args, **_kwargs: None
    return True


def reuse_router_type_adapters() -> bool:
    """LiteLLM 1.108's router builds a pydantic `TypeAdapter(Mapping[str, object])` on every
    request (`get_discovered_model_info`, from its success callback): building one generates
    a core schema each time, ~6% of the worker's busy time here (py-spy, load 3). A
    TypeAdapter of one type is immutable and stateless, so the router's are built once per
    type and reused; a type that cannot be a dict key is built as before."""
    try:
        from litellm import router
        from pydantic import TypeAdapter
    except ImportError:
        return False
    if getattr(router, "TypeAdapter", None) is not TypeAdapter:
        return False
    built: dict[Any, Any] = {}

    def adapter(kind: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return TypeAdapter(kind, *args, **kwargs)
        try:
            found = built.get(kind)
        except TypeError:  # unhashable: as before
            return TypeAdapter(kind)
        if found is None:
            found = built[kind] = TypeAdapter(kind)
        return found

    router.TypeAdapter = adapter
    return True


class InlineVllmSetup(ThreadPoolExecutor):
    """The event loop's default executor: LiteLLM's `completion()` call for a hosted_vllm
    model runs right here (see `inline_vllm_setup`); everything else goes to the pool."""

    def __init__(self, completion: Any) -> None:
        super().__init__(thread_name_prefix="llmops-pool")
        self.completion = completion
        self.inlined = 0

    def is_vllm_setup(self, fn: Any, args: tuple[Any, ...]) -> bool:
        """`partial(Context.run, partial(completion, model="hosted_vllm/...", ...))`, the
        exact shape litellm.main.acompletion hands to `loop.run_in_executor(None, ...)`."""
        if args or not isinstance(fn, functools.partial) or fn.keywords or len(fn.args) != 1:
            return False
        if not isinstance(getattr(fn.func, "__self__", None), contextvars.Context):
            return False
        call = fn.args[0]
        if not isinstance(call, functools.partial) or call.func is not self.completion:
            return False
        provider, model = call.keywords.get("custom_llm_provider"), call.keywords.get("model")
        if provider is not None:
            return bool(provider == "hosted_vllm")
        return isinstance(model, str) and model.startswith("hosted_vllm/")

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs or not self.is_vllm_setup(fn, args):
            return super().submit(fn, *args, **kwargs)
        done: Future[Any] = Future()
        try:
            done.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - as the pool's worker hands it back
            done.set_exception(exc)
        self.inlined += 1
        return done


def inline_vllm_setup() -> bool:
    """LiteLLM 1.108's `acompletion` runs the sync `completion()` of every request in the
    loop's default thread pool (`loop.run_in_executor(None, ...)`, litellm/main.py) and then
    awaits the coroutine it returns. For a `hosted_vllm/` model (every deployment llmops
    writes) that call resolves the provider and builds the request, no I/O: the hop costs
    a pool thread's wake-up, the GIL handed over twice and the result chained back through
    the loop (~5% of the worker's busy time, and two scheduler wake-ups of latency per
    request on a loaded box). The running loop's default executor becomes
    `InlineVllmSetup`: exactly that call runs inline, in the same copied context, its
    result or exception in a finished future; every other call goes to a thread pool as
    before. Needs the running loop (the worker's, while LiteLLM loads the config)."""
    import asyncio

    try:
        from litellm import main
        loop = asyncio.get_running_loop()
    except (ImportError, RuntimeError):
        return False
    if not callable(getattr(main, "completion", None)):
        return False
    loop.set_default_executor(InlineVllmSetup(main.completion))
    return True


def _auth_parts() -> dict[str, Any]:
    """LiteLLM's names `master_key_auth` needs, imported once (the worker's first request)."""
    if not _AUTH:
        from litellm.constants import LITELLM_PROXY_MASTER_KEY_ALIAS
        from litellm.proxy import proxy_server
        from litellm.proxy._types import (
            LiteLLMRoutes,
            LitellmUserRoles,
            ProxyErrorTypes,
            ProxyException,
            UserAPIKeyAuth,
        )
        from litellm.proxy.auth.auth_utils import route_in_additonal_public_routes
        from litellm.proxy.auth.user_api_key_auth import (
            _route_requires_auth_despite_public,
            get_request_route,
        )
        _AUTH.update(alias=LITELLM_PROXY_MASTER_KEY_ALIAS, server=proxy_server,
                     public=LiteLLMRoutes.public_routes.value, roles=LitellmUserRoles,
                     error=ProxyException, auth_error=ProxyErrorTypes.auth_error,
                     token=UserAPIKeyAuth, extra_public=route_in_additonal_public_routes,
                     despite_public=_route_requires_auth_despite_public,
                     route=get_request_route)
    return _AUTH


_AUTH: dict[str, Any] = {}


async def master_key_auth(request: Any, api_key: Any) -> Any:
    """The gateway's key check (`general_settings.custom_auth`, named there as
    `gateway_hooks.master_key_auth`): the bearer token compared in constant time with the
    master key LiteLLM read from the environment (the config holds the key's name, never its
    value). LiteLLM's own check compares it too, but per request also runs its virtual-key
    machinery: route, team, budget, end-user and tool checks against a database llmops never
    gives it (~9% of the worker's CPU per request here). A public route (/health/*) passes
    as LiteLLM lets it; a missing or wrong key is refused with HTTP 401 in LiteLLM's error
    shape (its own path answered 500 or 400 without a database). The body's safety check
    (no api_base from a client) still runs before this; the key is the proxy's admin, as
    the master key was."""
    import hmac

    a = _auth_parts()
    route = a["route"](request=request)
    if not a["despite_public"](route=route, general_settings=a["server"].general_settings) \
            and (route in a["public"] or a["extra_public"](current_route=route)):
        return a["token"](user_role=a["roles"].INTERNAL_USER_VIEW_ONLY)
    key = a["server"].master_key
    if isinstance(key, str) and key and isinstance(api_key, str) and hmac.compare_digest(
            api_key.encode(), key.encode()):
        return a["token"](api_key=a["alias"], user_role=a["roles"].PROXY_ADMIN,
                          user_id=a["server"].litellm_proxy_admin_name)
    raise a["error"](message="Authentication Error, invalid or missing master key",
                     type=a["auth_error"], param="api_key", code=401)


APPLIED: dict[str, bool] = {}


def apply_all() -> dict[str, bool]:
    """Each patch by name: applied (True) or left alone (the code is not what it knows).
    Once per process: LiteLLM executes the hooks module once per callback it names."""
    if not APPLIED:
        APPLIED.update(skip_dead_otel_seed=skip_dead_otel_seed(),
                       reuse_router_type_adapters=reuse_router_type_adapters(),
                       inline_vllm_setup=inline_vllm_setup())
    return dict(APPLIED)
