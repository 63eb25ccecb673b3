"""LoRA adapters: which version (the sha256 of its files, shown short) of which run's output or
folder is hot-loaded into which vLLM server, and how long its last load took. Deploying reads
the version from the host first (the run's final adapter, or the folder) and asks the operator
to confirm it; the detail lists every version the adapter has had, newest first, with the
servers each went to, so ctrl+z's target is in sight."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from llmops.console.presenters.adapter_words import (
    STAND_IN_SHA,
    adapter_spec,
    adapter_versions,
    source_host,
    source_text,
    versions_text,
)
from llmops.console.screens.presenter import Confirm, Key, Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets.render import num
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Spec

if TYPE_CHECKING:
    from llmops.console.screens.base import ViewContext

class AdapterPresenter(Presenter):
    kind = "adapter"
    columns = ("name", "server", "state", "source", "version", "loaded", "load s")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "Deploy", "Deploy an adapter to a server, from a run's output or a "
                   "folder (a form; its version is read from the host and confirmed)"),
        "edit": Key("e", "Edit", "Change the selected adapter: another run, folder or server "
                    "(its version is read again; an action, ctrl+z undoes it)"),
        "remove": Key("x", "Undeploy", "Unload the adapter and remove it from the lab; its "
                      "files stay in the host's store (an action; ctrl+z brings it back)",
                      action="undeploy"),
    }
    form = FormLayout(
        fields=("name", "run", "path", "host", "server", "merge_to"),
        labels={"run": "From run", "path": "Or folder", "merge_to": "Merge into"},
        help={"name": "the model name requests use, e.g. support-v2",
              "run": "a run of the lab whose final adapter it is",
              "path": "or: an adapter folder on the host (absolute path)",
              "host": "where that folder is (default: the server's host)",
              "server": "a server with runtime LoRA (see Servers)",
              "merge_to": "also merge into the base: a new model folder (optional)"},
        refs={"run": "run", "server": "server", "host": "host"},
        filled={"sha256": STAND_IN_SHA},
        title="Deploy an adapter", submit="Deploy", edit_focus="server")
    what = ("LoRA adapters appear here: where each came from (a run or a folder), its version "
            "(sha256), the server it is hot-loaded into and how long the load took.")
    cli = "llmops adapter deploy NAME --run R --server S"
    created = "deployed"
    removed = "undeployed"
    leaves = ("is unloaded from its server and leaves the lab's desired state (its files stay "
              "in the host's store)")
    busy_words: ClassVar[dict[str, str]] = {
        **Presenter.busy_words, "new": "deploying", "edit": "redeploying",
        "remove": "undeploying"}
    serving = ("deployed", "stored")
    pane = True

    def state_cell(self, row: RowState) -> Text:
        """Deployed (served) reads as good news, stored (kept, no server) as quiet."""
        if not row.busy and row.state in ("deployed", "stored"):
            return Text(f"{'●' if row.state == 'deployed' else '○'} {row.state}",
                        style="green" if row.state == "deployed" else "grey50")
        return super().state_cell(row)

    def cells(self, row: RowState) -> list[str | Text]:
        spec, summary = adapter_spec(row.spec), row.summary or {}
        loaded = summary.get("loaded")
        return [spec.name, spec.server or "-", self.state_cell(row), source_text(spec),
                spec.short_sha(),
                Text("yes", style="green") if loaded else Text("no" if loaded is False else "?",
                                                                style="grey50"),
                num(summary.get("load_seconds"), "{:.2f}s")]

    def detail_title(self, row: RowState) -> Text:
        spec = adapter_spec(row.spec)
        merged = f" · merged into {spec.merge_to}" if spec.merge_to else ""
        return Text.assemble(
            (spec.name, "bold"), f" · version {spec.short_sha()} · {source_text(spec)}"
            f"{' on ' + spec.host if spec.host else ''} → server {spec.server or '-'}{merged} · ",
            (row.busy or row.state, "bold"))

    def notes(self, context: ViewContext, spec: Spec, state: str) -> Text | None:
        history = context.engine.adapter_versions(spec.name)
        return versions_text(adapter_versions(history, adapter_spec(spec)), state)

    # -- deploying: the version comes from the host -----------------------------------------
    def form_initial(self, context: ViewContext, initial: dict[str, Any]) -> dict[str, Any]:
        """The lab's only host is not prefilled beside its only run: `host` goes with `path`,
        and the form refused the prefill it had made ("host goes with path")."""
        if "run" in initial:
            initial.pop("host", None)
        return initial

    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        return True  # the version is read from the host and shown before it is deployed

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        wanted = adapter_spec(spec)
        sha = context.engine.adapter_sha(wanted.run, wanted.path,
                                         source_host(context.lab, wanted))
        filled = AdapterSpec.model_validate({**wanted.model_dump(), "sha256": sha})
        before = context.lab.read_spec(self.kind, wanted.name)
        was = (f"It replaces version {before.sha256[:12]}: vLLM reloads it in place and resets "
               "the prefix cache.\n" if isinstance(before, AdapterSpec)
               and before.sha256 != sha else "")
        body = Text.assemble(
            "Adapter ", (wanted.name, "bold"), " from ", source_text(wanted), " is version\n\n",
            (f"  {sha}\n\n", "bold cyan"), was,
            f"Deploy it to server {wanted.server}?" if wanted.server
            else "Keep it in the store (no server)?",
            "\nThis is an action: ctrl+z rolls it back (by sha).")
        return Confirm(f"Deploy adapter {wanted.name}?", body, "Deploy", spec=filled)
