"""The server checklist's checks fail on real faults: a completion with no tokens, a slow
burst, a process holding less memory than its model's weights.

The HTTP checks run against a stand-in that speaks the OpenAI completions wire format (the
production client is what runs); the memory check against a real detached process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.kinds.server.checks import check_burst, check_completion, check_memory
from llmops.ops.kinds.server.client import VllmClient
from llmops.ops.transport import LocalTransport

FACTS = {"gpus": [], "cpu_count": 2, "ram_total_bytes": 24 * 2**30}


class StandIn(BaseHTTPRequestHandler):
    """A completions endpoint whose answer and delay the test sets (`server.answer`)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.delay)  # type: ignore[attr-defined]
        tokens = self.server.tokens  # type: ignore[attr-defined]
        body = json.dumps({"choices": [{"text": " hi" * tokens}],
                           "usage": {"completion_tokens": tokens}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.delay, server.tokens = 0.0, 4  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def client_of(server: ThreadingHTTPServer) -> VllmClient:
    return VllmClient(f"http://127.0.0.1:{server.server_address[1]}", "m")


def spec(**changes: Any) -> ServerSpec:
    return ServerSpec(**({"name": "chk", "host": "local", "model": "/m"} | changes))


def test_completion_check_needs_tokens(stand_in: ThreadingHTTPServer) -> None:
    with client_of(stand_in) as client:
        assert check_completion(client)[0]
        stand_in.tokens = 0  # type: ignore[attr-defined]
        ok, detail = check_completion(client)
    assert not ok and detail.startswith("0 tokens")


def test_burst_check_has_a_bound(stand_in: ThreadingHTTPServer) -> None:
    stand_in.delay = 0.03  # type: ignore[attr-defined]
    with client_of(stand_in) as client:
        ok, detail = check_burst(client, spec())
        assert ok and "default bound" in detail, detail
        ok, detail = check_burst(client, spec(p95_limit_ms=5))
    assert not ok and "(<= 5 ms, p95_limit_ms)" in detail, detail


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[LocalTransport, str]]:
    """A real detached process (~10 MB RSS) standing where the server's process would be."""
    t = LocalTransport(HostSpec(name="local", local=True, python=sys.executable,
                                workdir=str(tmp_path / "work")))
    name = "chk-sleeper"
    procs.start(t, name, [sys.executable, "-c", "import time; time.sleep(120)"])
    yield t, name
    procs.stop(t, name, grace=1)


def model_folder(root: Path, config: dict[str, Any] | None) -> str:
    root.mkdir()
    if config is not None:
        (root / "config.json").write_text(json.dumps(config))
    return str(root)


SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
         "num_attention_heads": 1, "vocab_size": 100, "torch_dtype": "float32"}
BIG = {**SMALL, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
       "num_attention_heads": 32, "vocab_size": 32000}


@pytest.mark.parametrize(("config", "passes", "says"), [
    (SMALL, True, "its weights"),
    (BIG, False, "its weights"),  # ~27 GiB of float32 weights in a 10 MB process
    (None, False, "no config.json"),  # unknown size: a vLLM server holds far more than 10 MB
], ids=["small-model", "process-smaller-than-weights", "weights-unknown"])
def test_memory_check_against_the_weights(sleeper: tuple[LocalTransport, str], tmp_path: Path,
                                          config: dict[str, Any] | None, passes: bool,
                                          says: str) -> None:
    t, name = sleeper
    model = model_folder(tmp_path / "model", config)
    ok, detail = check_memory(t, spec(model=model), name, FACTS)
    assert ok is passes and says in detail, detail
