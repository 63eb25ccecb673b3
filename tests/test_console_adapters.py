"""The Adapters view with Pilot: rows from hand-edited adapters (no vLLM needed), the detail's
versions by short sha, and the deploy form, whose version is read from the host (a real
adapter folder, hashed by the host-side script) and shown to confirm before any action.
Read-only offers no deploy or undeploy. Loading into a real server is the adapter kind's test."""

from __future__ import annotations

import json
from pathlib import Path

from test_console_support import (
    SIZE,
    close_app_lab,
    footer_keys,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Input, Static

from llmops.console.app import LlmopsApp
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable
from llmops.rollback.lab import Lab

A, B = "a" * 64, "b" * 64


def lab_with_adapter(tmp_path: Path) -> Path:
    """Host local, server `plain` (never started) and adapter `sup`, hand-edited twice: two
    versions in the lab's history."""
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    try:
        (path / "servers").mkdir()
        (path / "servers" / "plain.toml").write_text('host = "local"\nmodel = "/models/t"\n')
        lab.commit("hand edit: server plain", ["servers/plain.toml"])
        (path / "adapters").mkdir()
        for sha in (A, B):
            (path / "adapters" / "sup.toml").write_text(
                f'path = "/srv/a"\nhost = "local"\nserver = "plain"\nsha256 = "{sha}"\n')
            lab.commit(f"hand edit: adapter sup {sha[:4]}", ["adapters/sup.toml"])
    finally:
        lab.close()
    return path


async def adapters_of(pilot: object, app: LlmopsApp) -> ResourceVerbs:
    await opened(pilot)  # type: ignore[arg-type]
    await pilot.press("4")  # type: ignore[attr-defined]
    assert app.main is not None
    view = app.main.view("adapters")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "adapter"
    return view


async def test_rows_versions_and_the_deploy_form_asks_the_host(tmp_path: Path) -> None:
    folder = tmp_path / "v3"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(b"\1" * 32)
    app = LlmopsApp(lab_with_adapter(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        view = await adapters_of(pilot, app)
        await wait_for(pilot, lambda: "sup" in view.rows and view.rows["sup"].notes is not None,
                       60, "sup observed")
        cells = view.query_one(ResourceTable).get_row("sup")
        assert cells[:2] == ["sup", "plain"] and cells[3] == "path /srv/a"
        assert cells[4] == B[:12]
        notes = shown_text(view.query_one("#detail-notes", Static))
        assert notes.index(B[:12]) < notes.index(A[:12])  # newest first
        assert f"● {B[:12]}  on plain" in notes
        assert {"new", "edit", "undeploy", "rollback"} <= footer_keys(app)

        await pilot.press("n")
        form = await on_screen(pilot, SpecFormScreen)
        assert [f.name for f in form.fields] == ["name", "run", "path", "host", "server",
                                                 "merge_to"]  # the sha comes from the host
        for field, value in (("name", "v3"), ("path", str(folder)), ("host", "local"),
                             ("server", "plain")):
            form.query_one(f"#field-{field}", Input).value = value
        await wait_for(pilot, lambda: form.spec is not None, what=f"a spec {form.problems}")
        await pilot.press("ctrl+s")
        confirm = await on_screen(pilot, ConfirmScreen, 60)
        body = shown_text(confirm.query_one("#confirm-body"))
        assert "is version" in body and "Deploy it to server plain?" in body
        sha = body.split("is version")[1].split()[0]
        assert len(sha) == 64 and sha not in (A, B, "0" * 64)
        await pilot.press("n")  # nothing happens
        await on_screen(pilot, MainScreen)
        assert "v3" not in view.rows
        close_app_lab(app)


async def test_read_only_offers_no_deploy_or_undeploy(tmp_path: Path) -> None:
    app = LlmopsApp(lab_with_adapter(tmp_path), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await adapters_of(pilot, app)
        await wait_for(pilot, lambda: "sup" in view.rows, 30, "sup listed")
        assert not {"new", "edit", "undeploy", "rollback"} & footer_keys(app)
        close_app_lab(app)
