"""A crash raises an alert (issue 12 item 5): a real CPU vLLM server of its own (the shared
one must not die), SIGKILLed; `llmops alert watch` sees it exited, raises `crash` once after
the hysteresis's samples and journals it; a restart brings it back and clears the alert."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from labtools import llmops
from realparts import require_vllm

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.transport import LocalTransport
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

pytestmark = [pytest.mark.vllm]

PORT = 18947


@pytest.fixture(scope="module")
def crashy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, HostSpec]]:
    """A lab with host `local` and server `crashy` up; removed at the end. Its targets are
    within reach of a loaded box, so the checklist's targets check passes."""
    require_vllm(module=False)
    tmp = tmp_path_factory.mktemp("alert-crash")
    host = HostSpec(name="local", local=True, python=sys.executable, workdir=str(tmp / "wd"))
    model = tmp / "tiny"
    source = files("llmops.ops.hostside").joinpath("tinymodel.py").read_text()
    LocalTransport(host).python_script(source, [str(model)], timeout=300).check()
    spec = ServerSpec(name="crashy", host="local", model=str(model), dtype="float32",
                      max_model_len=256, port=PORT, cpu_kvcache_gib=1, cpu_inline_worker=True,
                      args={"enforce-eager": True}, target_ttft_p95_ms=600_000,
                      target_output_tps=0)
    lab = Lab(tmp / "lab")
    engine = Engine(lab, lock_wait=60)
    try:
        assert engine.act([Change("host", "local", host)], "host local added").ok
        record = engine.act([Change("server", "crashy", spec)], "server crashy up")
        assert record.status == "succeeded", record.error
        yield tmp / "lab", host
    finally:
        engine.act([Change("server", "crashy", None)], "server crashy down")
        engine.close()
        lab.close()


def watch(lab: Path, rounds: int) -> list[dict[str, Any]]:
    done = llmops(lab, "alert", "watch", "--interval", "1", "--rounds", str(rounds), "--json",
                  timeout=300)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.timeout(1500)  # two vLLM starts (up, restart) on a busy shared box
def test_a_crash_raises_an_alert_once_journalled_and_a_restart_clears_it(
        crashy: tuple[Path, HostSpec]) -> None:
    lab, host = crashy
    transport = LocalTransport(host)
    assert [a for a in watch(lab, 2) if a["rule"] == "crash"] == []  # up: nothing to say
    pid = procs.status(transport, "crashy").pid
    assert pid
    os.kill(pid, signal.SIGKILL)

    seen = watch(lab, 5)
    crashes = [a for a in seen if a["rule"] == "crash"]
    assert [a["alert"] for a in crashes] == ["raised"], seen  # once, after three samples
    assert crashes[0]["message"] == "server crashy does not answer (crashed or stopped)"

    opened = Lab(lab)
    try:
        journalled = [a for a in opened.journal.touching([("server", "crashy")])
                      if a.kind == "alert"]
        assert [a.steps[0].facts["rule"] for a in journalled] == ["crash"]
        assert journalled[0].summary.startswith("alert raised: server crashy does not answer")
        assert opened.verify() == []
    finally:
        opened.close()

    procs.stop(transport, "crashy", 5)  # the orphaned engine core
    restarted = json.loads(llmops(lab, "server", "restart", "crashy", "--json",
                                  timeout=900).stdout)
    assert restarted["ok"], restarted
    cleared = [a for a in watch(lab, 3) if a["rule"] == "crash"]
    assert [(a["alert"], a["id"]) for a in cleared] == [("cleared", crashes[0]["id"])]
    assert cleared[0]["message"] == "server crashy answers again"
