"""The Gateways view with Pilot, cheap: the gateway's spec hand-edited into a lab (its servers
too, never started), and usage lines written where the gateway's callback writes them on its
host. The console's path is the real one: the engine observes the gateway (its process is not
running: `stopped`), reads the usage lines through the kind's report, and shows them."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from labtools import llmops, llmops_json
from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    lab_with,
    local_host,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Input

from llmops.console.app import LlmopsApp
from llmops.console.screens.gateway_try import GatewayTryScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.gateway.spec import GatewaySpec
from llmops.rollback.lab import Lab

USAGE = [
    {"model": "chat", "ok": True, "prompt_tokens": 20, "completion_tokens": 4, "cost": 0.25,
     "api_base": "http://127.0.0.1:8001/v1", "at": 1.0},
    {"model": "chat", "ok": True, "prompt_tokens": 20, "completion_tokens": 4, "cost": 0.0,
     "cache_hit": True, "api_base": "http://127.0.0.1:8001/v1", "at": 2.0},
    {"model": "code", "ok": True, "prompt_tokens": 9, "completion_tokens": 2, "cost": 0.0,
     "fallbacks": 1, "api_base": "http://127.0.0.1:8002/v1", "at": 3.0},
]


def lab_with_gateway(tmp_path: Path) -> Path:
    host = local_host(tmp_path)
    path = lab_with(tmp_path / "lab", host)
    lab = Lab(path)
    try:
        (path / "servers").mkdir()
        for name, port in (("a", 8001), ("b", 8002)):
            (path / "servers" / f"{name}.toml").write_text(
                f'host = "local"\nmodel = "/models/tiny"\nport = {port}\n')
        spec = GatewaySpec(name="gw", host="local", port=4100,
                           models={"chat": ["a"], "code": ["b"]}, fallbacks={"chat": ["code"]})
        rel = lab.write_spec("gateway", "gw", spec)
        lab.commit("hand edit: servers a, b and gateway gw", ["servers", rel])
    finally:
        lab.close()
    home = Path(host.workdir) / "gateways" / "gw"
    home.mkdir(parents=True)
    (home / "usage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in USAGE))
    return path


async def gateways_of(pilot: object, app: LlmopsApp) -> ResourceVerbs:
    await opened(pilot)  # type: ignore[arg-type]
    assert app.main is not None
    app.main.action_show("gateways")
    view = app.main.view("gateways")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "gateway"
    await wait_for(pilot, lambda: "logs" in footer_keys(app), 30,  # type: ignore[arg-type]
                   "the Gateways view's keys")
    return view


def observed(view: ResourceVerbs, name: str) -> bool:
    row = view.rows.get(name)
    return row is not None and row.summary is not None and not row.in_flight \
        and row.report is not None


async def test_row_detail_usage_and_keys(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with_gateway(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        view = await gateways_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "gw"), 60, "gw observed")
        table = view.query_one(ResourceTable)
        cells = [str(c) for c in table.get_row("gw")]
        assert cells[:3] == ["gw", "local", "4100"] and cells[3].endswith("stopped"), cells
        assert cells[4] == "chat → a ⇢ code; code → b", cells
        assert {"remove", "cache-on", "logs", "rollback"} <= footer_keys(app)
        table.move_cursor(row=table.get_row_index("gw"))
        await pilot.pause()
        title = shown_text(view.query_one("#detail-title"))
        assert "gw · 127.0.0.1:4100 on local · stopped" in title
        assert "$LITELLM_MASTER_KEY" in title and "cache off" in title
        report = view.presenter.report_text(view.rows["gw"].report)
        assert report is not None
        text = report.plain
        assert "chat" in text and "2 req" in text and "20+4" not in text  # summed: 40+8
        assert "40+8 tok · cost 0.250000 · cache 1 · fallbacks 0" in text
        assert "code" in text and "fallbacks 1" in text
    close_app_lab(app)


async def test_read_only_offers_no_change(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with_gateway(tmp_path), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await gateways_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "gw"), 60, "gw observed")
        keys = footer_keys(app)
        assert "logs" in keys and not {"remove", "cache-on", "cache-off", "rollback"} & keys, keys
    close_app_lab(app)


async def test_usage_per_minute_and_try_box(tmp_path: Path) -> None:
    """The usage lines of the last minutes are tailed into lab.db (`gateway_usage`) and shown
    per model per minute (a sparkline, blocks per minute); `i` opens the try box, whose
    worker reports a gateway that does not answer (here: stopped) without blocking the app."""
    path = lab_with_gateway(tmp_path)
    now = time.time()
    fresh = [{"model": "chat", "ok": True, "prompt_tokens": 5, "completion_tokens": 3,
              "cost": 0.5, "at": now - 70 + i} for i in range(2)]
    fresh += [{"model": "chat", "ok": True, "prompt_tokens": 5, "completion_tokens": 3,
               "cost": 0.5, "at": now - 1 + i / 10} for i in range(3)]
    fresh += [{"event": "guardrail", "model": "chat", "action": "blocked",
               "rules": ["ignore-instructions"], "at": now}]
    usage = Path(local_host(tmp_path).workdir) / "gateways" / "gw" / "usage.jsonl"
    with usage.open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in fresh))
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        view = await gateways_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "gw") and view.rows["gw"].notes, 60,
                       "gw's per-minute usage")
        notes = view.rows["gw"].notes
        assert notes is not None
        text = notes.plain
        assert "per minute" in text and "chat" in text, text
        assert "(5 req, 1 blocked = 0.03/min over 30 min)" in text, text
        assert "code" not in text  # its only line is from 1970: older than a day
        table = view.query_one(ResourceTable)
        table.move_cursor(row=table.get_row_index("gw"))
        await pilot.pause()
        assert "try" in footer_keys(app)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, GatewayTryScreen), 10, "try box")
        screen = app.screen
        assert isinstance(screen, GatewayTryScreen)
        screen.query_one("#try-prompt", Input).value = "Hello there"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.answered is not None, 60, "the try's answer")
        assert screen.answered is not None and screen.answered.answer is None
        assert "the gateway did not answer" in shown_text(screen.query_one("#try-status"))
        await pilot.press("escape")
    close_app_lab(app)
    with sqlite3.connect(path / "lab.db") as db:
        rows = db.execute("select model, sum(requests), sum(blocked), sum(cost) from "
                          "gateway_usage where ref = 'gateway/gw' group by model").fetchall()
    assert rows == [("chat", 5.0, 1.0, 2.5)], rows


def test_try_answer_words_and_sparkline() -> None:
    """What the try box says of a blocked, a redacted and a plain answer (pure), and the
    per-minute sparkline's scaling."""
    from llmops.console.presenters.gateway import sparkline
    from llmops.console.screens.gateway_try import answer_text, guardrail_of, max_tokens_of

    blocked = {"ok": False, "status": 400, "error": '{"error": {"message": "llmops guardrail: '
               'prompt injection refused (rule ignore-instructions)"}}'}
    assert guardrail_of(blocked) == "blocked: prompt injection refused (rule ignore-instructions)"
    redacted = {"ok": True, "text": "my key is [REDACTED:api-key] [REDACTED:email]",
                "server": "ga", "api_base": "http://127.0.0.1:1/v1", "prompt_tokens": 3,
                "completion_tokens": 9, "cost": 0.0012, "fallbacks": 0, "seconds": 0.2,
                "overhead_ms": 8.5}
    assert guardrail_of(redacted) == "redacted: api-key, email"
    plain = answer_text("chat", {**redacted, "text": "hello"}).plain
    assert "chat answered by ga (http://127.0.0.1:1/v1) · 3+9 tokens · cost 0.00120000" in plain
    assert "gateway overhead 8.5 ms" in plain and plain.endswith("guardrail none fired")
    assert "HTTP 400" in answer_text("chat", blocked).plain
    assert max_tokens_of("16") == 16
    for bad in ("0", "x", "5000"):
        with pytest.raises(ValueError, match="max tokens"):
            max_tokens_of(bad)
    assert sparkline([0, 0]) == "▁▁" and sparkline([0, 4, 8]) == "▁▅█"


def test_list_counts_the_usage_lines_without_a_console(tmp_path: Path) -> None:
    """`gateway list` counts requests, cost and errors from the usage lines on the host now,
    as `gateway usage` does (user4's R3: `requests -` right after `gateway try` answered, in a
    lab no console had sampled); a line appended later is counted by the next list; lines
    that cannot be read say so in the list (`?` and the reason), not `-`."""
    path = lab_with_gateway(tmp_path)
    row = llmops_json(path, "gateway", "list")[0]
    assert (row["name"], row["requests"], row["errors"]) == ("gw", 3, 0), row
    assert row["cost"] == pytest.approx(0.25) and "usage_error" not in row, row
    usage = Path(local_host(tmp_path).workdir) / "gateways" / "gw" / "usage.jsonl"
    with usage.open("a") as fh:  # what `gateway try` leaves: one more line
        fh.write(json.dumps({"model": "chat", "ok": False, "at": 4.0}) + "\n")
    row = llmops_json(path, "gateway", "list")[0]
    assert (row["requests"], row["errors"]) == (4, 1), row
    shown = llmops(path, "gateway", "list").stdout
    assert re.search(r"│ gw .*│ 4 +│ 0\.250000 │ 1 +│", shown), shown
    usage.unlink()
    usage.mkdir()  # unreadable as a file: the host-side read fails
    row = llmops_json(path, "gateway", "list")[0]
    assert row["requests"] is None and row["usage_error"], row
    shown = llmops(path, "gateway", "list").stdout
    assert "gw: usage not read (" in shown and "│ ?" in shown, shown
