"""Screenshots of the real app: the README's (LLMOPS_SAVE_SCREENSHOTS=1 writes docs/)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest
from sshhosts import SshHostFactory
from test_console_support import (
    close_app_lab,
    history_view,
    host_state,
    hosts_view,
    lab_with,
    local_host,
    opened,
    wait_for,
)

from llmops.console.app import LlmopsApp
from llmops.console.widgets.table import ResourceTable
from llmops.ops.kinds.host import HostSpec
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab

DOCS = Path(__file__).resolve().parent.parent / "docs"
SHOT_SIZE = (200, 24)
"""Wide enough for every column of the Hosts view (a remote host, an unreachable one and
`local`): at 120 columns the torch and cuda columns were off the picture."""


def svg_text(svg: str) -> str:
    """The text of a Textual SVG screenshot, its runs joined per line (y), left to right."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m[2]), []).append((float(m[1]), html.unescape(m[3])))
    return "\n".join("".join(t for _, t in sorted(r)).replace("\xa0", " ") for _, r in
                     sorted(rows.items()))


def target(tmp_path: Path, name: str) -> Path:
    return (DOCS if os.environ.get("LLMOPS_SAVE_SCREENSHOTS") else tmp_path) / name


@pytest.mark.ssh
async def test_screenshots(tmp_path: Path, ssh_host_factory: SshHostFactory) -> None:
    remote = ssh_host_factory("con-shot")
    path = lab_with(tmp_path / "lab", local_host(tmp_path))
    lab = Lab(path)
    engine = Engine(lab)
    spec = remote.spec(name="gpu-box")
    engine.act([Change("host", "gpu-box", spec)], "host gpu-box added",
               trust={"gpu-box": remote.host_pub_fingerprint})
    engine.act([Change("host", "spare", local_host(tmp_path, "spare"))], "host spare added")
    engine.rollback(3)
    rel = lab.write_spec("host", "old-rig", HostSpec(name="old-rig", address="192.0.2.1"))
    lab.commit("hand edit: host old-rig", [rel])
    engine.close()
    lab.close()

    app = LlmopsApp(path)
    async with app.run_test(size=SHOT_SIZE) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: host_state(app, "gpu-box") == "up"
                       and host_state(app, "old-rig") == "unreachable", what="probes")
        hosts_svg = target(tmp_path, "screenshot-hosts.svg")
        app.save_screenshot(str(hosts_svg.name), path=str(hosts_svg.parent))
        headers = [str(c.label) for c in hosts_view(app).query_one(ResourceTable).columns.values()]
        shown = svg_text(hosts_svg.read_text())
        assert headers[-1] == "cuda (driver / torch)"
        assert all(h in shown for h in headers), (headers, shown)  # every column in the picture
        assert all(v in shown for v in ("Envs", "Gateways", "Clusters"))  # every view tab
        await pilot.press("6")
        table = history_view(app).query_one(ResourceTable)
        await wait_for(pilot, lambda: table.row_count >= 3, what="history")
        history_svg = target(tmp_path, "screenshot-history.svg")
        app.save_screenshot(str(history_svg.name), path=str(history_svg.parent))
        for svg in (hosts_svg, history_svg):
            assert svg.stat().st_size > 10_000 and "llmops" in svg.read_text()
        close_app_lab(app)
