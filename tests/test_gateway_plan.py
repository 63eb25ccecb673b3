"""The gateway kind's pure parts, from data files: LiteLLM's config generated from the lab, the
plan's steps, admission and refusals.

A case is `tests/cases/gateway/<name>.toml`; the gateway is named `gw`, and specs start from
BASE (host local, models {chat = ["a"]}) unless they say. The lab has hosts `local` (this
machine) and `g2` (address 10.0.0.2), and servers `a` (port 8001) and `b` (port 8002) on
`local`, plus `[[servers]]` given by the case (fields of ServerSpec; host local by default).
- plan cases: `[desired]` and/or `[current]`, `[observed]` (GatewayObserved; `config_hash`,
  `loaded_hash` or `proc_hash` = "desired" / "current" stand for that spec's config marker or
  launch hash), `[[steps]]` (verb, and where given detail_has, argv, `data`), and `[config]`:
  a subset the generated config must hold (tables by key, lists exactly).
- admit cases: `[desired]`, `[[servers]]`, `[[gateways]]` (other gateways' fields), and
  `[expect_error] field, contains = [...]` or `[expect_ok]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from plancases import cases_of, load

from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.kinds.gateway import GatewayKind, GatewaySpec, plan_gateway
from llmops.ops.kinds.gateway.config import (
    Backend,
    Unreachable,
    backend_for,
    config_dict,
    config_text,
    marker_of,
)
from llmops.ops.kinds.gateway.launch import EnvNotReady, launch_hash
from llmops.ops.kinds.gateway.observed import BackendSeen, GatewayObserved
from llmops.ops.kinds.gateway.usage import parse, summed
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.rollback.kinds import admit_dependencies

CASES = cases_of("gateway")
BASE: dict[str, Any] = {"host": "local", "models": {"chat": ["a"]}}
FACTS = {"workdir": "/w", "python": "python3"}
HOOKS = "# the callbacks module\n"
HOSTS = {"local": HostSpec(name="local", local=True),
         "g2": HostSpec(name="g2", address="10.0.0.2"),
         "g3": HostSpec(name="g3", address="10.0.0.3")}


def servers_of(case: dict[str, Any]) -> dict[str, ServerSpec]:
    found = {"a": ServerSpec(name="a", host="local", model="/m/a", port=8001),
             "b": ServerSpec(name="b", host="local", model="/m/b", port=8002)}
    for raw in case.get("servers", []):
        found[raw["name"]] = ServerSpec(**{"host": "local", "model": "/m/x", **raw})
    return found


def spec_of(case: dict[str, Any], key: str) -> GatewaySpec | None:
    data = case.get(key)
    if data is None:
        return None
    return GatewaySpec.model_validate({"name": "gw", **BASE, **data})


def resolved(spec: GatewaySpec, servers: dict[str, ServerSpec]) -> dict[str, BackendSeen]:
    found = {}
    for name in spec.all_servers():
        server = servers.get(name)
        if server is None:
            found[name] = BackendSeen(error="not in the lab")
            continue
        host = HOSTS[server.host]
        try:
            b = backend_for(spec.host, server, host.address, host.local,
                            gateway_local=HOSTS[spec.host].local,
                            tunnel_port=spec.tunnel_port(name))
        except Unreachable as exc:
            found[name] = BackendSeen(error=str(exc))
            continue
        argv = [] if b.tunnel is None else [  # what tunnels.tunnel_argv makes of the lab
            "python3", "/w/gateways/gw/gateway_tunnel.py", str(b.tunnel), str(host.address),
            "22", "", "-", "/lab/known_hosts", str(server.port)]
        found[name] = BackendSeen(api_base=b.api_base, api_model=b.api_model, tunnel=b.tunnel,
                                  tunnel_argv=argv)
    return found


def backends(spec: GatewaySpec, servers: dict[str, ServerSpec]) -> dict[str, Backend]:
    return {n: Backend(n, str(s.api_base), str(s.api_model))
            for n, s in resolved(spec, servers).items()}


def observed_of(case: dict[str, Any]) -> GatewayObserved:
    raw = dict(case.get("observed", {}))
    servers = servers_of(case)
    specs = {k: spec_of(case, k) for k in ("desired", "current")}
    for field in ("config_hash", "loaded_hash"):
        which = raw.get(field)
        if which in specs and specs[which] is not None:
            spec = specs[which]
            assert spec is not None
            raw[field] = marker_of(config_text(spec, backends(spec, servers), HOOKS))
    facts = {**FACTS, **raw.pop("facts", {})}  # e.g. an env's venv: `[observed.facts.env]`
    if raw.get("proc_hash") in specs:
        spec = specs[raw["proc_hash"]]
        assert spec is not None
        raw["proc_hash"] = launch_hash(spec, facts)
    spec = specs["desired"] or specs["current"]
    assert spec is not None
    return GatewayObserved.model_validate({"facts": facts, "hooks_source": HOOKS,
                                           "backends": resolved(spec, servers), **raw})


def subset(want: Any, got: Any, path: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), (path, got)
        for key, value in want.items():
            assert key in got, f"{path}.{key} missing in {sorted(got)}"
            subset(value, got[key], f"{path}.{key}")
    else:
        assert want == got, (path, want, got)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    if "expect_error" in case or "expect_ok" in case:
        check_admit_case(case)
    else:
        check_plan_case(case)


def check_plan_case(case: dict[str, Any]) -> None:
    desired, current = spec_of(case, "desired"), spec_of(case, "current")
    observed = observed_of(case)
    steps = plan_gateway(desired, current, observed)
    expected = case.get("steps", [])
    assert [s.verb for s in steps] == [e["verb"] for e in expected], \
        f"steps: {[(s.verb, s.detail) for s in steps]}"
    for step, exp in zip(steps, expected, strict=True):
        if "detail_has" in exp:
            assert exp["detail_has"] in step.detail, step.detail
        if "argv" in exp:
            assert list(step.argv) == exp["argv"]
        for key, value in exp.get("data", {}).items():
            assert getattr(step.data, key, None) == value, (key, step)
    if "config" in case:
        assert desired is not None
        config = config_dict(desired, backends(desired, servers_of(case)))
        subset(case["config"], config)
        written = next((s for s in steps if s.verb == "write-config"), None)
        if written is not None:  # the file written is that config, with its marker
            text = str(written.data.config)  # type: ignore[attr-defined]
            assert marker_of(text) == written.data.hash  # type: ignore[attr-defined]
            assert json.loads(text)["model_list"][0]["litellm_params"] == \
                config["model_list"][0]["litellm_params"]


def context_of(case: dict[str, Any]) -> Context:
    desired: dict[tuple[str, str], Any] = {("host", n): h for n, h in HOSTS.items()}
    for name, server in servers_of(case).items():
        desired[("server", name)] = server
    for other in case.get("gateways", []):
        desired[("gateway", other["name"])] = GatewaySpec(**{**BASE, **other})
    for env in case.get("envs", []):
        desired[("env", env["name"])] = EnvSpec(**{"host": "local", **env})
    if case.get("drop_servers"):
        for name in case["drop_servers"]:
            desired.pop(("server", name))
    return Context(desired, lambda kind, name: None)


def admit(kind: GatewayKind, spec: GatewaySpec, context: Context) -> None:
    """What the engine checks before anything is written: dependencies, then the kind."""
    admit_dependencies(kind, ("gateway", spec.name), spec, context)
    kind.admit(spec, context)


def check_admit_case(case: dict[str, Any]) -> None:
    kind = GatewayKind()
    try:
        spec = spec_of(case, "desired")
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field, message = (str(err["loc"][0]) if err["loc"] else ""), str(err["msg"])
    else:
        assert spec is not None
        context = context_of(case)
        if "expect_ok" in case:
            admit(kind, spec, context)
            return
        with pytest.raises(SpecError) as info:
            admit(kind, spec, context)
        field, message = info.value.field, str(info.value)
    expect = case["expect_error"]
    assert field == expect["field"], message
    for part in expect.get("contains", []):
        assert part in message, message


def test_every_case_is_read() -> None:
    assert len(CASES) >= 20


def test_the_key_value_never_reaches_the_config() -> None:
    spec = GatewaySpec(name="gw", host="local", models={"chat": ["a"]}, master_key_env="GW_KEY")
    text = config_text(spec, {"a": Backend("a", "http://127.0.0.1:8001/v1", "/m/a")}, HOOKS)
    assert json.loads(text)["general_settings"] == {
        "master_key": "os.environ/GW_KEY", "custom_auth": "gateway_hooks.master_key_auth"}


def test_usage_lines_sum_per_model() -> None:
    lines = [
        json.dumps({"model": "chat", "ok": True, "prompt_tokens": 10, "completion_tokens": 4,
                    "cost": 0.5, "api_base": "http://h:1/v1/chat/completions", "at": 1.0}),
        json.dumps({"model": "chat", "ok": True, "prompt_tokens": 10, "completion_tokens": 4,
                    "cost": 0.0, "cache_hit": True, "api_base": "http://h:1/v1", "at": 2.0}),
        json.dumps({"model": "code", "ok": False, "fallbacks": 0, "at": 3.0}),
        json.dumps({"model": "chat", "ok": True, "fallbacks": 1, "prompt_tokens": 1,
                    "completion_tokens": 1, "cost": 0.25, "api_base": "http://h:2/v1"}),
        '{"cut short',
        json.dumps({"event": "guardrail", "model": "chat", "action": "blocked",
                    "rules": ["jailbreak-mode"]}),
        json.dumps({"event": "guardrail", "model": "chat", "action": "redacted",
                    "rules": ["email"]}),
        json.dumps({"event": "guardrail", "model": "code", "action": "unchecked",
                    "rules": ["guard-model-unavailable"], "guard": "gd"}),
    ]
    usage = summed(parse(lines)).to_dict()
    assert usage["models"]["chat"] == {
        "requests": 3, "errors": 0, "prompt_tokens": 21, "completion_tokens": 9, "cost": 0.75,
        "cache_hits": 1, "fallbacks": 1, "blocked": 1, "redacted": 1, "unchecked": 0,
        "backends": {"http://h:1/v1": 2, "http://h:2/v1": 1}}
    assert usage["models"]["code"]["errors"] == 1
    assert usage["models"]["code"]["unchecked"] == 1  # passed without its guard's verdict
    assert usage["models"]["code"]["blocked"] == 0 and usage["total"]["unchecked"] == 1
    assert usage["total"]["requests"] == 4
    assert (usage["first_at"], usage["last_at"]) == (1.0, 3.0)


def test_a_gateway_follows_a_server_that_moves() -> None:
    """A server a gateway routes to changes port (or listen, host, served name): the gateway
    joins the action, spec unchanged; other server changes, and other gateways, stay out."""
    from llmops.rollback.changes import Change
    from llmops.rollback.gateways import followers

    servers = servers_of({})
    gw = GatewaySpec.model_validate({"name": "gw", **BASE})
    other = GatewaySpec.model_validate({"name": "gx", "host": "local", "port": 4001,
                                        "models": {"code": ["b"]}})
    specs: dict[Any, Any] = {("server", n): s for n, s in servers.items()}
    specs |= {("gateway", "gw"): gw, ("gateway", "gx"): other}
    before = {("server", "a"): servers["a"]}
    for moved in ({"port": 8011}, {"listen": "0.0.0.0"}, {"served_model_name": "tiny"}):
        after = servers["a"].model_copy(update=moved)
        found = followers(specs, [Change("server", "a", after)], before)
        assert found == [Change("gateway", "gw", gw)], moved
    calmer = servers["a"].model_copy(update={"max_model_len": 512, "dtype": "float32"})
    assert followers(specs, [Change("server", "a", calmer)], before) == []
    # a gateway changed in the same action is reconciled anyway: not added twice
    moved_a = Change("server", "a", servers["a"].model_copy(update={"port": 8011}))
    assert followers(specs, [moved_a, Change("gateway", "gw", gw)], before) == []


def test_usage_per_minute_in_lab_db(tmp_path: Path) -> None:
    """The usage lines summed per model per minute into lab.db's `gateway_usage`; a second
    reader that read from the same offset adds nothing (no line counted twice); the series
    fills quiet minutes with zeros, oldest first."""
    import threading
    import time

    import sqlite_utils

    from llmops.ops.kinds.gateway.usage import per_minute
    from llmops.rollback.gateways import UsageMinutes, minute_series

    t0 = int(time.time() // 60) * 60 - 600  # minutes of today: older ones are dropped
    records = [
        {"at": t0 + 0.5, "model": "chat", "ok": True, "prompt_tokens": 3, "completion_tokens": 2,
         "cost": 0.25, "cache_hit": True},
        {"at": t0 + 30, "model": "chat", "ok": False},
        {"at": t0 + 65, "model": "chat", "ok": True, "fallbacks": 1, "cost": 0.5},
        {"at": t0 + 66, "event": "guardrail", "model": "chat", "action": "blocked"},
        {"at": t0 + 67, "event": "guardrail", "model": "chat", "action": "redacted"},
        {"at": t0 + 68, "event": "guardrail", "model": "chat", "action": "unchecked"},
        {"model": "code", "ok": True},  # no time: left out
    ]
    minutes = per_minute(records)
    assert set(minutes) == {("chat", t0), ("chat", t0 + 60)}
    assert minutes[("chat", t0)] == {
        "requests": 2, "errors": 1, "prompt_tokens": 3, "completion_tokens": 2, "cost": 0.25,
        "cache_hits": 1, "fallbacks": 0, "blocked": 0, "redacted": 0, "unchecked": 0}
    later = minutes[("chat", t0 + 60)]
    assert (later["blocked"], later["fallbacks"], later["unchecked"]) == (1, 1, 1)
    store = UsageMinutes(sqlite_utils.Database(tmp_path / "lab.db"), threading.RLock())
    assert store.add("gateway/gw", "/u.jsonl", 0, 500, minutes)
    assert not store.add("gateway/gw", "/u.jsonl", 0, 500, minutes)  # another reader was first
    assert store.add("gateway/gw", "/u.jsonl", 500, 600, per_minute(records[:1]))
    assert store.offset("gateway/gw", "/u.jsonl") == 600
    series = minute_series(store.recent("gateway/gw", t0 - 60), t0 + 120, 4)["chat"]
    assert [p["minute"] for p in series] == [t0 - 60, t0, t0 + 60, t0 + 120]
    assert [p["requests"] for p in series] == [0, 3, 1, 0]
    assert series[1]["cost"] == 0.5 and series[2]["blocked"] == 1
    assert series[2]["unchecked"] == 1  # requests let through unchecked, per minute too


def test_fallback_drill_config_kills_only_the_drilled_model() -> None:
    """The drill proxy's config: the drilled model's servers at a closed port, the fallback's
    untouched, no cache, its own name and port; a server shared with the fallback refused."""
    from llmops.ops.kinds.gateway.drill import DEAD_BASE, drill_spec, drilled_backends

    spec = GatewaySpec.model_validate({"name": "gw", "host": "local", "port": 4000,
                                       "cache": True, "models": {"chat": ["a"], "code": ["b"]},
                                       "fallbacks": {"chat": ["code"]}})
    backends = {"a": Backend("a", "http://127.0.0.1:8001/v1", "/m/a"),
                "b": Backend("b", "http://127.0.0.1:8002/v1", "/m/b")}
    drill = drill_spec(spec, 4001)
    assert (drill.name, drill.port, drill.cache, drill.proc_name()) == \
        ("gw-drill", 4001, False, "gateway.gw-drill")
    found = drilled_backends(spec, backends, "chat")
    assert found["a"].api_base == DEAD_BASE and found["b"] == backends["b"]
    shared = spec.model_copy(update={"models": {"chat": ["a", "b"], "code": ["b"]}})
    with pytest.raises(SpecError, match="serves chat and its fallback"):
        drilled_backends(shared, backends, "chat")


def test_a_gateway_on_an_env_that_is_not_built_is_not_started() -> None:
    """Like a server: no fallback to another python; the error names the env and the fix."""
    spec = GatewaySpec(name="gw", host="local", models={"chat": ["a"]}, env="lite")
    observed = GatewayObserved(facts={**FACTS, "env": {"name": "lite",
                                                       "error": "its venv is not built yet"}},
                               hooks_source=HOOKS, backends=resolved(spec, servers_of({})))
    with pytest.raises(EnvNotReady, match="env lite has no venv on local .its venv is not "
                       "built yet.: reconcile it first .llmops env up lite."):
        plan_gateway(spec, None, observed)


def test_a_gateway_follows_its_env_when_its_venv_changes() -> None:
    spec = GatewaySpec(name="gw", host="local", models={"chat": ["a"]}, env="lite")
    old = EnvSpec(name="lite", host="local", packages=["litellm[proxy]==1.108.7",
                                                       "gunicorn==23.0.0"])
    new = old.model_copy(update={"packages": ["gunicorn==23.0.0", "litellm[proxy]==1.108.6"]})
    fetched = old.model_copy(update={"index_url": "https://pypi.example/simple"})
    kind = GatewayKind()
    assert kind.depends_on(spec)["env"] == ("env", "lite")
    assert kind.follows(spec, ("env", "lite"), old, new)  # an upgrade: restarted on it
    assert kind.follows(spec, ("env", "lite"), old, old)  # a repair (--last-good): checked
    assert not kind.follows(spec, ("env", "lite"), old, fetched)  # how pip fetches: no
    assert not kind.follows(spec, ("env", "other"), old, new)
