"""The Indexes view's keys that every kind with the capability has, pressed with Pilot on an
index row: `l` (the kind's logs: the Weaviate llmops runs, or a line saying an attached one is
not its to read, and the ingest worker's progress and result) and ctrl+z (the one-key rollback
of the row's last action, confirmed, run live, its verdict shown). A real index: the session's
embedding server (a real CPU vLLM, test_index_support.py) and the Weaviate stand-in behind the
session's API key."""

from __future__ import annotations

from typing import Any

import pytest
from test_console_indexes import indexes_of, observed
from test_console_support import SIZE, close_app_lab, footer_keys, on_screen, shown_text, wait_for
from test_index_support import KEY_ENV, act, embedding_setup, start_standin, write_docs

from llmops.console.app import LlmopsApp
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.logs import LogScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.rollback import RollbackScreen
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.rollback.lab import Lab


@pytest.mark.timeout(1500)  # it may start the session's embedding vLLM
async def test_the_logs_key_and_ctrl_z_on_an_index_row(
        tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from labtools import llmops

    setup = embedding_setup(tmp_path_factory, pytestconfig)
    lab, env = setup.lab, setup.env
    handle = start_standin(setup.root / "keys-backups", api_key=setup.key)
    try:
        docs = write_docs(setup.root / "keys-docs")
        act(lab, "index", "create", "keys", "--host", "local", "--collection", "Keys",
            "--embed-server", "emb", "--http-port", str(handle.http_port), "--grpc-port",
            str(handle.grpc_port), "--api-key-env", KEY_ENV, "--source", str(docs), env=env)
        changed: dict[str, Any] = act(lab, "index", "create", "keys", "--alpha", "0.2",
                                      env=env)
        monkeypatch.setenv(KEY_ENV, setup.key)
        app = LlmopsApp(lab)
        async with app.run_test(size=SIZE) as pilot:
            view = await indexes_of(pilot, app)
            await wait_for(pilot, lambda: observed(view, "keys"), 90, "keys observed")
            assert {"logs", "rollback"} <= footer_keys(app)
            table = view.query_one(ResourceTable)
            table.move_cursor(row=table.get_row_index("keys"))
            await pilot.pause()

            await pilot.press("l")
            logs = await on_screen(pilot, LogScreen)
            assert "log of index keys on local" in shown_text(logs.query_one(".screen-title"))
            await wait_for(pilot, lambda: any(line.startswith("result: ")
                                              for line in logs.lines), 30, "the worker's result")
            assert logs.lines[0] == "== Weaviate (attached) ==", logs.lines
            assert "llmops does not run the Weaviate" in logs.lines[1]
            assert any(line.startswith("== ingest worker") for line in logs.lines)
            assert any("chunks" in line and "documents" in line for line in logs.lines)
            await pilot.press("escape")
            await on_screen(pilot, MainScreen)

            await pilot.press("ctrl+z")
            confirm = await on_screen(pilot, ConfirmScreen, 60)
            body = shown_text(confirm.query_one("#confirm-body"))
            assert f"action {changed['id']}" in body, body
            await pilot.press("y")
            live = await on_screen(pilot, RollbackScreen)
            await wait_for(pilot, lambda: live.verdict is not None or live.error is not None,
                           300, "the rollback's verdict")
            assert live.error is None and live.verdict is not None, live.error
            assert live.verdict.rollback_of == changed["id"]
            assert live.verdict.status == "succeeded", live.verdict
            assert shown_text(live.query_one("#verdict")).startswith("✓ rolled back in")
            await pilot.press("escape")
            await on_screen(pilot, MainScreen)
            close_app_lab(app)
        opened = Lab(lab)
        try:
            spec = opened.read_spec("index", "keys")
        finally:
            opened.close()
        assert isinstance(spec, IndexSpec) and spec.alpha == 0.5
    finally:
        llmops(lab, "index", "remove", "keys", check=None, env=env, timeout=300)
        handle.stop()
