"""The Servers view's edit says what else the action changes: a server that moves (its port
here) takes the gateway routing to it along, and the confirm lists that gateway before
anything is written (issue 15: followers in the preview). Hand-edited lab (nothing runs):
answering no writes nothing; an edit that moves nothing asks nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Input

from llmops.console.app import LlmopsApp
from llmops.console.presenters.server import ServerPresenter, follower_text
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.lab import Lab


def lab_with_routed_server(tmp_path: Path) -> Path:
    """Host local, server `plain` (never started) and gateway `gw` routing `chat` to it."""
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    try:
        for folder, name, text in (
            ("servers", "plain", 'host = "local"\nmodel = "/models/t"\nport = 18741\n'),
            ("gateways", "gw", 'host = "local"\nport = 18751\nmaster_key_env = "GW_KEY"\n'
                               '[models]\nchat = ["plain"]\n'),
        ):
            (path / folder).mkdir(exist_ok=True)
            (path / folder / f"{name}.toml").write_text(text)
            lab.commit(f"hand edit: {folder[:-1]} {name}", [f"{folder}/{name}.toml"])
    finally:
        lab.close()
    return path


def commit_count(lab: Path) -> int:
    return int(subprocess.run(["git", "-C", str(lab), "rev-list", "--count", "HEAD"],
                              capture_output=True, text=True, check=True).stdout)


async def test_a_port_change_lists_the_gateway_that_follows(tmp_path: Path) -> None:
    path = lab_with_routed_server(tmp_path)
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("2")
        assert app.main is not None
        view = app.main.view("servers")
        assert isinstance(view, ResourceVerbs)
        await wait_for(pilot, lambda: "plain" in view.rows, 30, "plain listed")
        commits = commit_count(path)

        await pilot.press("e")
        form = await on_screen(pilot, SpecFormScreen)
        assert form.query_one("#field-env", Input).value == ""  # the host's python
        form.query_one("#field-port", Input).value = "18742"
        await wait_for(pilot, lambda: form.spec is not None and form.spec.port == 18742,
                       what=f"a spec {form.problems}")
        await pilot.press("ctrl+s")
        confirm = await on_screen(pilot, ConfirmScreen, 30)
        body = shown_text(confirm.query_one("#confirm-body"))
        assert "In the same action" in body and "gateway gw: its routes rewritten" in body, body
        await pilot.press("n")  # nothing happens
        await on_screen(pilot, MainScreen)
        assert view.rows["plain"].spec.port == 18741  # type: ignore[attr-defined]
        assert commit_count(path) == commits
        close_app_lab(app)


def test_only_a_move_or_a_canary_asks_and_the_words_for_each() -> None:
    spec = ServerSpec(name="s", host="local", model="/m", port=18000)
    presenter = ServerPresenter()
    assert not presenter.needs_confirm(spec.model_copy(update={"max_model_len": 128}), spec)
    assert presenter.needs_confirm(spec.model_copy(update={"port": 18001}), spec)
    assert not presenter.needs_confirm(spec, None)  # a new server: nothing routes to it yet
    assert "nothing else changes" in follower_text(spec, []).plain
    canary = spec.model_copy(update={"strategy": "canary"})
    assert "refused (a canary needs one)" in follower_text(canary, []).plain
    said = follower_text(canary, ["gateway gw"]).plain
    assert "goes out as a canary" in said and "gateway gw: its routes rewritten and " \
        "reloaded (HUP), then the canary" in said
