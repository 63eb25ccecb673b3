"""The server kind against real vLLM (the CPU build) on an SSH test host, and the flag list.

Everything on host `local` goes through the engine and the real CLI in test_server_cli.py
(up, change, rollback with both strategies, TP=2, crash, failed download); what is left here
is the kind alone over an SSH tunnel (one vLLM start) and vLLM's own argument parser.
"""

from __future__ import annotations

import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from realparts import require_vllm

from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerKind, ServerSpec
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.transport import LocalTransport

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

require_vllm()  # a reported skip without vLLM, a failure in CI or with a broken install

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
                              "cpu_kvcache_gib": 1,
                              "args": {"enforce-eager": True},
                              "target_ttft_p95_ms": 10_000, "target_output_tps": 1}
    return ServerSpec(**(fields | changes))


def test_up_on_an_ssh_host(tiny_model: Path, ssh_host: Any, ssh_pool: HostPool) -> None:
    """Through the SSH tunnel: the server listens on the namespace's loopback only."""
    spec = tiny_spec(tiny_model, name="remote", port=18261, host=ssh_host.name)
    try:
        verbs, _seconds = reconcile(spec, None, ssh_pool)
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

    from llmops.ops.kinds.server.flags import ALLOWED_FLAGS

    parser = make_arg_parser(FlexibleArgumentParser())
    known = {opt for action in parser._actions for opt in action.option_strings}
    assert [f for f in ALLOWED_FLAGS if "--" + f.split(".")[0] not in known] == []
    booleans = [f for f, flag in ALLOWED_FLAGS.items() if flag.kind == "bool"]
    assert [f for f in booleans if "--no-" + f not in known] == []

