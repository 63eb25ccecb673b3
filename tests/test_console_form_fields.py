"""The console's forms can make what the CLI makes (user5's console walk): the Servers form
carries the LoRA switches an adapter needs (a newcomer was refused 'does not take adapters at
run time' with no field to fix it), and the Adapters form does not prefill a host beside a run
(the run's adapter is on the run's host: the prefilled host was refused at once)."""

from __future__ import annotations

from pathlib import Path

from test_console_support import lab_with, local_host

from llmops.console.presenters.adapter import AdapterPresenter
from llmops.console.presenters.server import ServerPresenter
from llmops.console.screens.base import ViewContext
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab


def test_the_server_form_offers_the_lora_switches() -> None:
    layout = ServerPresenter.form
    assert {"enable_lora", "runtime_lora"} <= set(layout.fields)
    assert not {"enable_lora", "runtime_lora"} & set(layout.advanced)  # in sight, not folded
    assert set(layout.advanced) <= set(layout.fields) <= set(ServerSpec.model_fields)
    spec = ServerSpec.model_validate({"name": "tiny", "host": "local", "model": "/m/tiny",
                                      "enable_lora": True, "runtime_lora": True,
                                      "cpu_inline_worker": True})
    assert spec.enable_lora and spec.runtime_lora


def test_the_adapter_form_leaves_the_host_to_the_run(tmp_path: Path) -> None:
    lab = Lab(lab_with(tmp_path / "lab", local_host(tmp_path)))
    try:
        context = ViewContext(lab, Engine(lab), read_only=False)
        presenter = AdapterPresenter()
        assert "host" not in presenter.form_initial(context, {"run": "r1", "host": "local"})
        assert presenter.form_initial(context, {"host": "local"}) == {"host": "local"}
    finally:
        lab.close()
