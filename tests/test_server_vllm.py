"""The server kind against real vLLM (the CPU build) serving a tiny model made here.

Each vLLM start costs ~25-45 s and ~3 GB on two cores, so tests share servers: one
recreate server walks through up -> client -> metrics -> change -> rollback -> SIGKILL ->
down; one blue-green server does change and rollback; TP=2 and SSH start once each.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerKind, ServerSpec
from llmops.ops.transport import HostPool, LocalTransport
from llmops.ops.vllm_client import VllmClient

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

try:
    import vllm  # noqa: F401  (only to know whether the CPU build is installed here)

    HAVE_VLLM = True
except Exception:  # noqa: BLE001
    HAVE_VLLM = False

if not HAVE_VLLM:
    pytest.skip("vLLM is not installed in this venv", allow_module_level=True)

KIND = ServerKind()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notes' tiny Llama, made by the same host-side script the demo uses (~4 s)."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    t = LocalTransport(HostSpec(name="local", local=True, python=sys.executable))
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    t.python_script(source, [str(out)], timeout=300).check()
    assert (out / "config.json").is_file()
    return out


@pytest.fixture(scope="module")
def local_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostPool]:
    workdir = tmp_path_factory.mktemp("localhost-wd")
    spec = HostSpec(name="local", local=True, python=sys.executable, workdir=str(workdir))
    pool = HostPool({"local": spec}.get, workdir / "known_hosts")
    yield pool
    pool.close()


def reconcile(desired: ServerSpec | None, current: ServerSpec | None, pool: HostPool,
              lines: list[str] | None = None) -> tuple[list[str], float]:
    """observe -> plan -> apply, as the engine does it; returns the verbs and seconds."""
    spec = desired or current
    assert spec is not None
    began = time.monotonic()
    steps = KIND.plan(desired, current, KIND.observe(spec, pool))
    for step in steps:
        KIND.apply(step, spec, pool, (lines if lines is not None else []).append)
    return [s.verb for s in steps], time.monotonic() - began


def client_for(pool: HostPool, spec: ServerSpec, port: int | None = None) -> Any:
    t = pool.transport(spec.host)
    fwd = t.forward(port or spec.port)
    local = fwd.__enter__()
    client = VllmClient(f"http://127.0.0.1:{local}", spec.api_model())
    return fwd, client


def tiny_spec(model: Path, **changes: Any) -> ServerSpec:
    fields: dict[str, Any] = {"name": "tiny", "host": "local", "model": str(model),
                              "dtype": "float32", "max_model_len": 256, "port": 18231,
                              "cpu_kvcache_gib": 1}
    return ServerSpec(**(fields | changes))


TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def served(tiny_model: Path, local_pool: HostPool) -> Iterator[ServerSpec]:
    """One recreate server for the tests that can share it; removed at the end."""
    spec = tiny_spec(tiny_model)
    lines: list[str] = []
    verbs, seconds = reconcile(spec, None, local_pool, lines)
    TIMINGS["cold start"] = seconds
    assert verbs == ["check-model", "start", "wait-ready", "smoke"]
    assert any("healthy after" in line for line in lines)
    yield spec
    reconcile(None, spec, local_pool)


def test_up_completion_and_stream(served: ServerSpec, local_pool: HostPool) -> None:
    fwd, client = client_for(local_pool, served)
    with fwd, client:
        assert client.health()
        assert client.models() == [served.api_model()]
        done = client.completion("Hello", max_tokens=8)
        assert done.tokens == 8
        assert done.seconds < 10
        streamed = client.stream_completion("Hello", max_tokens=8)
        assert streamed.ttft is not None
        assert streamed.ttft <= streamed.seconds
        assert streamed.text == done.text  # temperature 0: the same tokens either way


def test_metrics_scrape(served: ServerSpec, local_pool: HostPool) -> None:
    fwd, client = client_for(local_pool, served)
    with fwd, client:
        client.completion("Hello", max_tokens=4)
        snap = client.metrics()
    assert snap.counters["generation_tokens_total"] >= 4
    assert "num_requests_running" in snap.gauges
    assert "kv_cache_usage_perc" in snap.gauges
    assert snap.histograms["e2e_request_latency_seconds"][-1][1] >= 1


def test_checklist_and_idempotent(served: ServerSpec, local_pool: HostPool) -> None:
    checks = KIND.validate(served, local_pool)
    assert all(c.ok for c in checks), checks
    assert {c.name for c in checks} >= {"health", "model listed", "completion", "burst p95"}
    assert reconcile(served, served, local_pool)[0] == []


def test_change_and_rollback_restart(served: ServerSpec, local_pool: HostPool) -> None:
    changed = served.model_copy(update={"max_model_len": 128})
    verbs, seconds = reconcile(changed, served, local_pool)
    TIMINGS["recreate change"] = seconds
    assert verbs == ["check-model", "stop", "start", "wait-ready", "smoke"]
    fwd, client = client_for(local_pool, changed)
    with fwd, client:
        assert client.http.get("/v1/models").json()["data"][0]["max_model_len"] == 128
    verbs, seconds = reconcile(served, changed, local_pool)
    TIMINGS["recreate rollback"] = seconds
    assert "start" in verbs
    assert all(c.ok for c in KIND.validate(served, local_pool))


def test_sigkill_is_seen_as_crashed(served: ServerSpec, local_pool: HostPool) -> None:
    t = local_pool.transport("local")
    info = procs.status(t, served.name)
    os.kill(int(info.pid or 0), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.status(t, served.name).running and time.monotonic() < deadline:
        time.sleep(0.1)
    observed = KIND.observe(served, local_pool)
    proc = observed["procs"][served.name]
    assert not proc["running"]
    assert proc["exit_code"] not in (0, None)
    assert KIND.logs(served, local_pool, 20)
    plan = KIND.plan(served, served, observed)
    assert "crashed" in next(s.detail for s in plan if s.verb == "start")
    procs.stop(t, served.name, grace=5)  # the engine core and worker of the killed server


def test_bad_path_fails_before_anything_stops(tiny_model: Path, local_pool: HostPool) -> None:
    from llmops.ops.kinds.base import SpecError

    with pytest.raises(SpecError, match="model"):
        KIND.preflight(tiny_spec(tiny_model.parent / "missing"), local_pool)


def test_blue_green_change_and_rollback_in_grace(tiny_model: Path, local_pool: HostPool) -> None:
    """Change = green starts beside blue and takes the live port; rollback = a file flip."""
    blue = tiny_spec(tiny_model, name="bg", port=18241, strategy="blue-green",
                     colour_ports=[18242, 18243])
    green = blue.model_copy(update={"max_model_len": 128})
    try:
        verbs, TIMINGS["blue-green first start"] = reconcile(blue, None, local_pool)
        assert verbs[-2:] == ["switch", "start-forwarder"]
        assert live_max_model_len(local_pool, blue) == 256
        verbs, TIMINGS["blue-green change"] = reconcile(green, blue, local_pool)
        assert verbs == ["check-model", "start", "wait-ready", "smoke", "switch"]
        assert live_max_model_len(local_pool, blue) == 128
        verbs, TIMINGS["blue-green rollback"] = reconcile(blue, green, local_pool)
        assert verbs == ["switch"]
        assert live_max_model_len(local_pool, blue) == 256
        assert all(c.ok for c in KIND.validate(blue, local_pool))
    finally:
        reconcile(None, blue, local_pool)
    assert all(c.ok for c in KIND.validate_absent(blue, local_pool))


def live_max_model_len(pool: HostPool, spec: ServerSpec) -> int:
    """Asked on a fresh connection: a switch applies to new connections (see DESIGN.md)."""
    fwd, client = client_for(pool, spec)
    with fwd, client:
        assert client.completion("Hello", 4).tokens == 4
        return int(client.http.get("/v1/models").json()["data"][0]["max_model_len"])


def test_tp2_on_the_cpu_build(tiny_model: Path, local_pool: HostPool) -> None:
    spec = tiny_spec(tiny_model, name="tp2", port=18251, tp=2)
    try:
        verbs, TIMINGS["tp2 start"] = reconcile(spec, None, local_pool)
        assert "start" in verbs
        fwd, client = client_for(local_pool, spec)
        with fwd, client:
            assert client.completion("Hello", 8).tokens == 8
    finally:
        reconcile(None, spec, local_pool)


def test_up_on_an_ssh_host(tiny_model: Path, ssh_host: Any, ssh_pool: HostPool) -> None:
    """Through the SSH tunnel: the server listens on the namespace's loopback only."""
    spec = tiny_spec(tiny_model, name="remote", port=18261, host=ssh_host.name)
    try:
        verbs, TIMINGS["ssh start"] = reconcile(spec, None, ssh_pool)
        assert verbs == ["check-model", "start", "wait-ready", "smoke"]
        fwd, client = client_for(ssh_pool, spec)
        with fwd, client:
            assert client.stream_completion("Hello", 8).ttft is not None
        checks = KIND.validate(spec, ssh_pool)
        assert all(c.ok for c in checks), checks
    finally:
        reconcile(None, spec, ssh_pool)


def test_allow_list_matches_vllms_parser() -> None:
    """Every allowed flag (and its --no- form for booleans) parses with the installed vLLM."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from llmops.ops.vllm_args import ALLOWED_FLAGS

    parser = make_arg_parser(FlexibleArgumentParser())
    known = {opt for action in parser._actions for opt in action.option_strings}
    assert [f for f in ALLOWED_FLAGS if "--" + f.split(".")[0] not in known] == []
    booleans = [f for f, flag in ALLOWED_FLAGS.items() if flag.kind == "bool"]
    assert [f for f in booleans if "--no-" + f not in known] == []


def test_zz_report_timings() -> None:
    """Not a check: prints what was measured (run with -s) for the report and DESIGN.md."""
    for what, seconds in TIMINGS.items():
        print(f"{what:28s} {seconds:6.1f} s")
