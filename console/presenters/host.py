"""Hosts: this machine or a box over SSH, probed for its OS, CPU/RAM, GPUs and the vLLM and
peft it has. A probe is a host's poll (every 30 s; one that does not answer backs off); a new
remote host's key is shown to the operator to confirm before it is added."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text

from llmops.console.messages import ResourcePolled
from llmops.console.presenters.host_words import cuda_cell
from llmops.console.screens.acting import error_text
from llmops.console.screens.host_detail import HostDetailScreen
from llmops.console.screens.presenter import Confirm, Key, Presenter
from llmops.console.screens.resource_poll import UNREACHABLE, RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets import render
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.host.spec import HostSpec

if TYPE_CHECKING:
    from textual.screen import Screen

    from llmops.console.screens.base import ViewContext
    from llmops.rollback.telemetry import TelemetryPoller


def host_spec(spec: Spec) -> HostSpec:
    assert isinstance(spec, HostSpec)
    return spec


class HostPresenter(Presenter):
    kind = "host"
    columns = ("name", "state", "address", "os", "cpu / ram", "gpus (mem, util)", "vllm", "peft",
               "torch", "cuda (driver / torch)")
    keys: ClassVar[dict[str, Key]] = {
        "open": Key("enter", "Detail", "Full probe and processes"),
        "new": Key("a", "Add", "Add a host (local or over SSH)", action="add"),
        "remove": Key("d", "Remove", "Remove the selected host"),
        "poll": Key("p", "Probe", "Probe the selected host now", action="probe"),
    }
    leave_out: ClassVar[frozenset[str]] = frozenset()  # every verb: detail, probe, edit too
    form = FormLayout(
        fields=("local", "name", "address", "port", "user", "key", "python", "workdir",
                "cost_per_hour"),
        labels={"local": "This machine", "cost_per_hour": "Cost / hour"},
        help={"name": "e.g. gpu-1 (lowercase letters, digits, '-')"},
        hides={"local": ("address", "port", "user", "key")},
        title="Add a host", submit="Add")
    what = ("Machines llmops runs things on appear here: their OS, CPU and RAM, GPUs with "
            "memory and load, the vLLM, peft and torch they have, and the CUDA versions of "
            "the driver and of torch.")
    cli = "llmops host add NAME --local"
    leaves = "leaves the lab (its files on the host stay)"
    busy_words: ClassVar[dict[str, str]] = {**Presenter.busy_words, "new": "adding"}
    initial_state = "probing"
    polling_state = "probing"
    poll_interval = 30.0
    observe_interval = 0.0  # every poll is a probe

    def cells(self, row: RowState) -> list[str | Text]:
        spec, facts = host_spec(row.spec), row.facts
        user = f"{spec.user}@" if spec.user else ""
        address = "this machine" if spec.local else f"{user}{spec.address}:{spec.port}"
        return [spec.name, self.state_cell(row), address, str((facts or {}).get("os", "?")),
                render.cpu_ram_cell(facts), render.gpu_cell(facts),
                render.package_cell(facts, "vllm"), render.package_cell(facts, "peft"),
                render.package_cell(facts, "torch"), cuda_cell(facts)]

    def row_height(self, row: RowState) -> int:
        return max(1, len((row.facts or {}).get("gpus") or []))  # a line per GPU

    def poll(self, context: ViewContext, poller: TelemetryPoller | None, spec: Spec,
             observe: bool, was_up: bool | None) -> ResourcePolled:
        """A probe; its facts are recorded unless the console is read-only."""
        try:
            facts = context.engine.probe(host_spec(spec), record=not context.read_only)
        except Exception as exc:  # noqa: BLE001 - any failure degrades this host's row only
            return ResourcePolled(spec, UNREACHABLE, error_text(exc))
        return ResourcePolled(spec, "up", facts=facts)

    def detail_screen(self, context: ViewContext, row: RowState) -> Screen[None]:
        return HostDetailScreen(context, host_spec(row.spec), row.facts)

    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        """A remote host's key is confirmed when it is added or moves to another address."""
        new = host_spec(spec)
        if new.local:
            return False
        old = host_spec(before) if before is not None else None
        return old is None or (old.address, old.port) != (new.address, new.port)

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        host = host_spec(spec)
        key_type, fingerprint = context.engine.host_key(host.address or "", host.port)
        body = Text.assemble(
            ("The host at ", ""), (f"{host.address}:{host.port}", "bold"),
            (" presents this key:\n\n", ""), (f"  {key_type}\n  {fingerprint}\n\n", "bold cyan"),
            "Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host.\n"
            f"Trust it and add host {host.name}?")
        return Confirm("Trust this host key?", body, "Trust and add", {host.name: fingerprint})
