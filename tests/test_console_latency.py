"""The event loop is never blocked: slow probes and an unreachable host don't delay keys."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    hosts_view,
    lab_with,
    local_host,
    opened,
    wait_for,
)

from llmops.console.app import LlmopsApp
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.host import HostSpec

PROBE_SECONDS = 3.0
BLOCKED = 1.0
"""Seconds: far under a probe's PROBE_SECONDS, far over any frame."""


def slow_python(tmp: Path) -> Path:
    """A host python that takes PROBE_SECONDS to answer."""
    script = tmp / "slow-python"
    script.write_text(f"#!/bin/sh\nsleep {PROBE_SECONDS}\nexec {sys.executable} \"$@\"\n")
    script.chmod(0o755)
    return script


async def test_slow_probes_do_not_delay_key_presses(tmp_path: Path) -> None:
    python = str(slow_python(tmp_path))
    slow = [local_host(tmp_path, f"slow-{i}", python=python) for i in range(7)]
    dead = HostSpec(name="dead", address="192.0.2.1", port=22)  # TEST-NET: never answers
    app = LlmopsApp(lab_with(tmp_path / "lab", *slow, dead, act=False))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = hosts_view(app)
        await wait_for(pilot, lambda: len(view.rows) == 8
                       and all(view.rows[s.name].in_flight for s in slow), what="probes running")
        probes_started = time.monotonic()

        lags: list[float] = []

        async def sample_loop_lag() -> None:
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - t0 - 0.005)

        sampler = asyncio.create_task(sample_loop_lag())
        table = view.query_one(ResourceTable)
        delays: list[float] = []
        for i in range(20):
            before = table.cursor_row
            t0 = time.perf_counter()
            app.simulate_key("down" if i % 2 == 0 else "up")
            while table.cursor_row == before:  # noqa: ASYNC110 - measuring, not waiting
                await asyncio.sleep(0)
            delays.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
        sampler.cancel()
        still_probing = sum(view.rows[s.name].in_flight for s in slow)
        measured_within = time.monotonic() - probes_started

        print(f"\nkey press -> effect over {len(delays)} presses while 7 probes of "
              f"{PROBE_SECONDS:.0f}s run and one host is unreachable: median "
              f"{statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms; "
              f"event-loop lag max {max(lags) * 1000:.1f} ms over {len(lags)} samples")
        assert still_probing == 7 and measured_within < PROBE_SECONDS
        # A probe on the event loop would hold a key press for its 3 s; frame-level figures
        # (~2.5 ms median here) belong to a benchmark: on the shared 2-core CI box one lag
        # sample reached 92 ms (cause not found yet), which a frame-sized bound fails.
        assert max(delays) < BLOCKED
        assert max(lags) < BLOCKED

        await wait_for(pilot, lambda: all(view.rows[s.name].state == "up" for s in slow),
                       limit=PROBE_SECONDS + 20, what="slow probes done")
        close_app_lab(app)
