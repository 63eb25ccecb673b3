"""The Hosts view against real hosts: `local` and network-namespace sshd hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sshhosts import SshHostFactory
from test_console_support import (
    SIZE,
    close_app_lab,
    host_state,
    hosts_view,
    lab_with,
    local_host,
    on_screen,
    opened,
    shown_text,
    wait_for,
)
from textual.widgets import Input, Switch

from llmops.console.app import LlmopsApp
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.host_detail import HostDetailScreen
from llmops.console.screens.main import MainScreen
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.console.widgets.table import ResourceTable

pytestmark = pytest.mark.ssh


async def test_add_remote_host_confirm_fingerprint_then_kill_it(
        tmp_path: Path, ssh_host_factory: SshHostFactory) -> None:
    remote = ssh_host_factory("con-add")
    app = LlmopsApp(lab_with(tmp_path / "lab", local_host(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "local") == "up", what="local up")
        await pilot.press("a")
        form = await on_screen(pilot, SpecFormScreen)
        form.query_one("#field-local", Switch).value = False
        spec = remote.spec()
        for field, value in {"name": "gpu-1", "address": spec.address, "port": str(spec.port),
                             "user": spec.user, "key": spec.key, "python": spec.python,
                             "workdir": spec.workdir}.items():
            form.query_one(f"#field-{field}", Input).value = str(value)
        await pilot.pause()
        assert form.spec is not None and not form.spec.local
        await pilot.press("ctrl+s")
        confirm = await on_screen(pilot, ConfirmScreen)
        shown = shown_text(confirm.query_one("#confirm-body"))
        assert remote.host_pub_fingerprint in shown
        await pilot.press("y")
        await wait_for(pilot, lambda: host_state(app, "gpu-1") == "up", what="gpu-1 probed")
        view = hosts_view(app)
        facts = view.rows["gpu-1"].facts
        assert facts and facts["workdir"] == str(remote.workdir) and facts["os"]
        table = view.query_one(ResourceTable)
        await wait_for(pilot, lambda: "up" in str(  # the row shows while its action runs
            table.get_cell("gpu-1", table.ordered_columns[1].key)), what="gpu-1's cell up")

        # the host goes away: only its row greys out; `local` stays live and re-probes
        remote.kill()
        table.select_key("gpu-1")
        await pilot.press("p")
        await wait_for(pilot, lambda: host_state(app, "gpu-1") == "unreachable", what="grey row")
        state_cell = table.get_cell("gpu-1", table.ordered_columns[1].key)
        assert "unreachable" in state_cell.plain and "retry in" in state_cell.plain
        name_cell = table.get_cell("gpu-1", table.ordered_columns[0].key)
        assert "grey50" in str(name_cell.spans[0].style)
        assert host_state(app, "local") == "up" and table.row_count == 2
        table.select_key("local")
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.rows["local"].in_flight, what="local re-probed")
        assert host_state(app, "local") == "up"
        assert isinstance(app.screen, MainScreen)

        # it comes back: the next retry finds it (countdown of 5s)
        remote.start()
        await wait_for(pilot, lambda: host_state(app, "gpu-1") == "up", limit=20,
                       what="gpu-1 back after its retry")
        close_app_lab(app)


async def test_detail_and_remove(tmp_path: Path) -> None:
    lab = lab_with(tmp_path / "lab", local_host(tmp_path), local_host(tmp_path, "spare"))
    app = LlmopsApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        view = hosts_view(app)
        await wait_for(pilot, lambda: host_state(app, "spare") == "up", what="spare up")
        view.query_one(ResourceTable).select_key("spare")
        await pilot.press("enter")
        detail = await on_screen(pilot, HostDetailScreen)
        await wait_for(pilot, lambda: "llmops runs no processes" in str(
            detail.query_one("#procs").render()), what="process list")
        shown = shown_text(detail.query_one("#facts"))
        assert detail.facts and detail.facts["os"] in shown  # what the probe reported, shown
        assert detail.facts["hostname"] in shown
        await pilot.press("escape")
        await on_screen(pilot, MainScreen)
        await pilot.press("d")
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: "spare" not in view.rows, what="spare removed")
        assert view.query_one(ResourceTable).row_count == 1
        assert app.context is not None
        assert app.context.lab.read_spec("host", "spare") is None
        close_app_lab(app)
