"""The gateway end to end, on the session's gateway lab (tests/gatewayfixtures.py: servers ga
and gb, gateway gw exposing `chat` (ga) and `code` (gb), `chat` falling back to `code`; real
LiteLLM, real CPU vLLM). In file order: routing by name (LiteLLM's api-base header names the
server); the master key (401 without it or with a wrong one); a cache hit on a repeat after
turning the cache on (a reload, not a restart); a routing change and its rollback under a
client loop with zero failed requests (HUP reloads, same master pid); a server's port change
followed in one action; the fallback drill; a fallback when ga's vLLM is stopped; the usage
lines (requests, tokens, cost, cache hits, fallbacks per model: of this module's requests and
the guard tests' before it); the LiteLLM patches probe; the master key in neither git nor
lab.db; bad specs refused with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from gatewayloop import ClientLoop
from labtools import git_log
from realparts import require_vllm

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.transport import LocalTransport

pytest.register_assert_rewrite("gatewayfixtures")  # before its import: a plugin
from gatewayfixtures import (  # noqa: E402
    DRILL_PORT,
    GATEWAY_PORT,
    KEY,
    KEY_ENV,
    PORT_A,
    PORT_A_MOVED,
    PORT_B,
    UP,
    VENV,
    cli,
    master_pid,
    tried,
)

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]
pytest_plugins = ["gatewayfixtures"]

require_vllm()


@pytest.fixture
def lab(gateway_lab: Path) -> Path:
    """The session's gateway lab (tests/gatewayfixtures.py)."""
    return gateway_lab


def test_routes_by_name_and_checks_pass(lab: Path) -> None:
    action = UP["action"]
    assert action["status"] == "succeeded", action
    assert [s["verb"] for s in action["steps"]][-3:] == ["write-config", "start", "wait-ready"]
    checks = {c["name"]: c for c in action["checks"]}
    assert {"process", "config loaded", "master key required", "model chat", "model code"} \
        <= set(checks), checks
    assert all(c["ok"] for c in checks.values()), checks
    chat, code = tried(lab, "chat", "Route me"), tried(lab, "code", "Route me")
    assert (chat["server"], chat["api_base"]) == ("ga", f"http://127.0.0.1:{PORT_A}/v1")
    assert (code["server"], code["api_base"]) == ("gb", f"http://127.0.0.1:{PORT_B}/v1")
    assert chat["completion_tokens"] > 0 and chat["fallbacks"] == 0
    assert chat["cost"] and chat["cost"] > 0  # ga is priced; the header carries it


def test_master_key_is_required(lab: Path) -> None:
    with httpx.Client(timeout=60) as c:
        r = c.post(f"http://127.0.0.1:{GATEWAY_PORT}/v1/chat/completions",
                   json={"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                         "max_tokens": 2})
        wrong = c.post(f"http://127.0.0.1:{GATEWAY_PORT}/v1/chat/completions",
                       headers={"Authorization": "Bearer sk-not-the-key"},
                       json={"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                             "max_tokens": 2})
    for refused in (r, wrong):  # the gateway's own key check (LiteLLM's said 500 / 400)
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": {
            "message": "Authentication Error, invalid or missing master key",
            "type": "auth_error", "param": "api_key", "code": "401"}}, refused.text
    assert tried(lab, "chat", "With the key")["ok"]


def test_cache_on_is_a_reload_and_a_repeat_hits(lab: Path) -> None:
    pid = master_pid(lab)
    done = cli(lab, "gateway", "up", "gw", "--cache", "--cache-ttl-s", "600")
    assert done["ok"], done
    verbs = [s["verb"] for s in done["action"]["steps"]]
    assert "reload" in verbs and "start" not in verbs, verbs
    assert master_pid(lab) == pid
    first = tried(lab, "code", "Cache me, please")
    again = tried(lab, "code", "Cache me, please")
    assert not first["cache_hit"] and again["cache_hit"], (first, again)
    assert again["text"] == first["text"]


def test_routing_change_and_rollback_drop_nothing(lab: Path) -> None:
    pid = master_pid(lab)
    # ~10 a second: each HUP still lands among requests in flight
    loop = ClientLoop(GATEWAY_PORT, KEY, pause=0.1)
    loop.start()
    try:
        # chat and code swap servers (kept apart: a fallback drill needs them on different ones)
        changed = cli(lab, "gateway", "up", "gw", "--model", "chat=gb", "--model", "code=ga")
        assert changed["ok"], changed
        assert tried(lab, "chat", "Where now?")["server"] == "gb"
        back = cli(lab, "rollback", str(changed["action"]["id"]))
        assert back["ok"], back
        assert tried(lab, "chat", "Where now, again?")["server"] == "ga"
        again = cli(lab, "rollback", str(back["action"]["id"]))  # a rollback of the rollback
        assert again["ok"], again
        assert tried(lab, "chat", "And now?")["server"] == "gb"
        last = cli(lab, "rollback", str(again["action"]["id"]))
        assert last["ok"], last
        assert tried(lab, "chat", "And at last?")["server"] == "ga"
    finally:
        loop.stop()
    assert loop.failures == [], (loop.failures[:5], loop.answered, loop.retried)
    assert loop.answered > 10, loop.answered
    print(f"client loop: {loop.answered} answered, {loop.retried} resent after a reset of an "
          "idle kept-alive connection, 0 failed")
    assert set(loop.backends) == {f"http://127.0.0.1:{PORT_A}/v1",
                                  f"http://127.0.0.1:{PORT_B}/v1"}, loop.backends
    for action in (changed["action"], back["action"], again["action"], last["action"]):
        verbs = [s["verb"] for s in action["steps"]]
        assert "reload" in verbs and "start" not in verbs and "stop" not in verbs, verbs
    assert master_pid(lab) == pid  # every change was a HUP to the same master
    for action in (back["action"], again["action"], last["action"]):
        assert all(c["ok"] for c in action["checks"]), action["checks"]
        drilled = {c["name"]: c for c in action["checks"] if c["name"].startswith("fallback")}
        assert drilled["fallback chat (drill)"]["ok"], action["checks"]  # after a rollback only
        assert action["seconds"] is not None  # timed (journalled with the action)


def test_server_port_change_moves_the_gateway_in_one_action(lab: Path) -> None:
    """ga moves to another port and served name: the gateway follows in the same action
    (write-config + HUP after ga's restart), its checklist proves chat answers from ga's new
    port; the loop's requests while ga restarts fall back to code (gb); the rollback moves
    both back. (The served name changes too: the gateway's config holds it as well.)"""
    pid = master_pid(lab)
    # at 0.25 s ga's restarts took 3 and 6 minutes in a CI dry run
    loop = ClientLoop(GATEWAY_PORT, KEY, pause=1.0)
    loop.start()
    try:
        moved = cli(lab, "server", "up", "ga", "--port", str(PORT_A_MOVED),
                    "--served-model-name", "tiny-a")
        assert moved["ok"], moved
        after = tried(lab, "chat", "Where is ga now?")
        back = cli(lab, "rollback", str(moved["action"]["id"]))
        assert back["ok"], back
        again = tried(lab, "chat", "And ga now?")
    finally:
        loop.stop()
    assert loop.failures == [], (loop.failures[:5], loop.answered, loop.retried)
    assert (after["server"], after["api_base"]) == ("ga", f"http://127.0.0.1:{PORT_A_MOVED}/v1")
    assert (again["server"], again["api_base"]) == ("ga", f"http://127.0.0.1:{PORT_A}/v1")
    for action in (moved["action"], back["action"]):
        assert ["gateway", "gw"] in action["refs"], action["refs"]  # one action, one rollback
        gw_verbs = [s["verb"] for s in action["steps"] if s["ref"] == "gateway/gw"]
        assert gw_verbs == ["write-config", "reload", "wait-ready"], gw_verbs
        assert [s["ref"] for s in action["steps"]][-1] == "gateway/gw"  # after ga's restart
        gw_checks = {c["name"]: c["ok"] for c in action["checks"] if c["ref"] == "gateway/gw"}
        assert gw_checks.get("model chat") and all(gw_checks.values()), action["checks"]
    assert master_pid(lab) == pid  # HUPs to the same master
    print(f"port move + rollback: {loop.answered} answered ({loop.backends}), "
          f"{loop.retried} resent, 0 failed")


def test_fallback_drill_leaves_production_alone(lab: Path) -> None:
    """chat's servers dead on a drill proxy (another port): answered by code's gb with a
    fallback; the production gateway's master and routes are untouched, nothing committed."""
    pid, before = master_pid(lab), git_log(lab)
    done = cli(lab, "gateway", "drill", "gw", "--port", str(DRILL_PORT), timeout=600)
    assert done["ok"], done
    chat = done["models"]["chat"]
    assert (chat["server"], chat["api_base"]) == ("gb", f"http://127.0.0.1:{PORT_B}/v1"), chat
    assert chat["fallbacks"] >= 1, chat
    assert master_pid(lab) == pid and git_log(lab) == before
    assert procs.status(LocalTransport(HostSpec(name="local", local=True, workdir=str(
        Path(str(lab).removesuffix("/lab")) / "work"))), "gateway.gw-drill").running is False
    assert tried(lab, "code", "Still here?")["server"] == "gb"


def test_fallback_when_a_server_is_stopped(lab: Path) -> None:
    """A drill: ga's vLLM stops (not through the lab); chat is answered by code's gb."""
    work = Path(str(lab).removesuffix("/lab")) / "work"
    t = LocalTransport(HostSpec(name="local", local=True, workdir=str(work)))
    assert procs.stop(t, "ga").stopped in ("term", "kill")
    answer = tried(lab, "chat", "Are you there, ga?")
    assert answer["server"] == "gb" and answer["fallbacks"] >= 1, answer


def test_usage_lines_count_tokens_cost_cache_and_fallbacks(lab: Path) -> None:
    usage = cli(lab, "gateway", "usage", "gw", timeout=120)
    chat, code = usage["models"]["chat"], usage["models"]["code"]
    assert chat["requests"] > 10 and chat["prompt_tokens"] > 0 and chat["completion_tokens"] > 0
    assert chat["cost"] > 0  # ga's price: 1000 / 2000 per 1M tokens
    assert code["cache_hits"] >= 1
    assert usage["total"]["fallbacks"] >= 1
    assert f"http://127.0.0.1:{PORT_A}/v1" in chat["backends"]
    work = Path(str(lab).removesuffix("/lab")) / "work"
    lines = [json.loads(line) for f in (work / "gateways").rglob("usage.jsonl")
             for line in f.read_text().splitlines() if line.strip()]
    overheads = [r["overhead_ms"] for r in lines if r.get("ok") and "overhead_ms" in r]
    assert overheads and all(ms >= 0 for ms in overheads), lines[-3:]  # LiteLLM's own time
    rows = cli(lab, "gateway", "list", timeout=120)  # counted from the lines now (no console)
    assert rows[0]["name"] == "gw" and rows[0]["state"] == "serving", rows
    assert rows[0]["requests"] >= usage["total"]["requests"] > 10, (rows, usage["total"])


PATCH_PROBE = """
import asyncio, json, sys, threading
from typing import Mapping
sys.path.insert(0, sys.argv[1])

async def main():
    import gateway_hooks as h, gateway_patches as p, litellm
    from litellm import router
    from litellm.proxy.auth import user_api_key_auth as auth
    loop = asyncio.get_running_loop()
    answer = await litellm.acompletion(
        model="hosted_vllm/" + sys.argv[3], api_base=sys.argv[2], max_tokens=4,
        messages=[{"role": "user", "content": "Say hello"}])
    pooled = await loop.run_in_executor(None, threading.get_ident)
    adapter = router.TypeAdapter(Mapping[str, object])
    print(json.dumps({
        "patches": h.PATCHES, "key_check": callable(getattr(h, "master_key_auth", None)),
        "otel_noop": auth._seed_request_destinations(None) is None,
        "one_adapter": adapter is router.TypeAdapter(Mapping[str, object]),
        "adapter_works": adapter.validate_python({"a": 1}) == {"a": 1},
        "inlined": getattr(loop._default_executor, "inlined", None),
        "answer": answer.choices[0].message.content, "tokens": answer.usage.completion_tokens,
        "other_calls_pooled": pooled != threading.get_ident()}))

asyncio.run(main())
"""


def test_the_litellm_patches_apply_and_keep_what_requests_do(lab: Path) -> None:
    """gateway_patches.py, beside the hooks in the gateway's folder, in the gateway's venv:
    the proxy's worker printed every patch as applied (its log); and a probe there (the
    module loaded the way LiteLLM loads it, inside a running loop) shows each one: the
    auth's per-request OTel seeding, whose import fails every time without
    opentelemetry.sdk, a no-op; one router TypeAdapter per type, still validating; and a
    real completion of gb through litellm.acompletion whose sync setup ran inline (counted
    by the loop's executor) and answered, while any other call still goes to a pool
    thread. The usage lines above were written through the kept-open file."""
    work = Path(str(lab).removesuffix("/lab")) / "work"
    log = (work / "run" / "gateway.gw" / "log").read_text(errors="replace")
    printed = [line for line in log.splitlines() if line.startswith("llmops gateway patches:")]
    assert printed, log[-2000:]
    applied = json.loads(printed[-1].split(":", 1)[1])
    assert applied == {"inline_vllm_setup": True, "reuse_router_type_adapters": True,
                       "skip_dead_otel_seed": True}, printed
    model = str(Path(str(lab).removesuffix("/lab")) / "tiny")
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", PATCH_PROBE,
                           str(work / "gateways" / "gw"), f"http://127.0.0.1:{PORT_B}/v1", model],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["patches"] == applied and found["key_check"], found
    assert found["otel_noop"] and found["one_adapter"] and found["adapter_works"], found
    assert found["inlined"] == 1 and found["tokens"] > 0, found
    assert found["other_calls_pooled"], found


def test_master_key_never_in_git_or_lab_db(lab: Path) -> None:
    history = subprocess.run(["git", "-C", str(lab), "log", "-p", "--all"],
                             capture_output=True, text=True, check=True).stdout
    assert KEY_ENV in history and KEY not in history
    for db in lab.glob("lab.db*"):
        assert KEY.encode() not in db.read_bytes(), db
    work = Path(str(lab).removesuffix("/lab")) / "work"
    for f in (work / "gateways").rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


@pytest.mark.parametrize(("args", "field"), [
    (("--model", "chat=nope"), "models.chat[0]"),
    (("--model", "chat=http://127.0.0.1:18601/v1"), "models"),
    (("--model", "chat=gb", "--master-key-env", "sk-abcdefghijklmnopqrstuvwx"),
     "master_key_env"),
    (("--model", "chat=gb", "--master-key-env", "LLMOPS_TEST_UNSET_KEY"), "master_key_env"),
    (("--model", "chat=gb", "--port", str(PORT_B)), "port"),
    (("--model", "chat=gb", "--guard", "chat=ga"), "guards.chat.server"),
])
def test_bad_specs_refused_with_nothing_written(lab: Path, args: tuple[str, ...],
                                                field: str) -> None:
    before = git_log(lab)
    done = cli(lab, "gateway", "up", "bad", "--host", "local", "--venv", str(VENV), *args,
               check=2, timeout=120)
    assert not done["ok"] and field in done["error"], done
    assert git_log(lab) == before
    assert not (lab / "gateways" / "bad.toml").exists()
