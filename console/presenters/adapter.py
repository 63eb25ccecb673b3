"""LoRA adapters: which version (the sha256 of its files, shown short) of which run's output or
folder is hot-loaded into which vLLM server, and how long its last load took. Deploying reads
the version from the host first (the run's final adapter, or the folder) and asks the operator
to confirm it; the detail lists every version the adapter has had, newest first, with the
servers each went to, so ctrl+z's target is in sight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Confirm, Key, Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.console.widgets.render import num
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Spec, SpecError
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.console.screens.base import ViewContext
    from llmops.rollback.lab import Lab

STAND_IN_SHA = "0" * 64
"""What the form validates with until the host says the adapter's sha256."""


def adapter_spec(spec: Spec) -> AdapterSpec:
    assert isinstance(spec, AdapterSpec)
    return spec


def source_text(spec: AdapterSpec) -> str:
    return f"run {spec.run}" if spec.run else f"path {spec.path}"


def source_host(lab: Lab, spec: AdapterSpec) -> str | None:
    """Where a path adapter's files are: its host, else its server's host (a run's adapter
    is found through the run)."""
    if spec.run or spec.host:
        return spec.host
    server = lab.read_spec("server", spec.server) if spec.server else None
    if not isinstance(server, ServerSpec):
        raise SpecError("server", f"there is no server named {spec.server}",
                        "name a server of the lab, or give host")
    return server.host


def adapter_versions(history: Sequence[dict[str, Any]],
                     current: AdapterSpec | None) -> list[dict[str, Any]]:
    """Pure: the door's history (one entry per commit that changed the adapter's file, newest
    first) grouped by version: each sha256 once, newest first, with the servers it was
    deployed to, its source, the commits that named it, and whether it is desired now."""
    found: dict[str, dict[str, Any]] = {}
    for entry in history:
        sha = entry.get("sha256")
        if not sha:
            continue  # a commit that removed it
        seen = found.setdefault(sha, {
            "sha256": sha, "short": sha[:12], "servers": [], "source": entry.get("source"),
            "commits": [], "current": current is not None and current.sha256 == sha})
        if entry.get("server") and entry["server"] not in seen["servers"]:
            seen["servers"].append(entry["server"])
        seen["commits"].append({"commit": entry.get("commit"), "when": entry.get("when"),
                                "summary": entry.get("summary")})
    return list(found.values())


def versions_text(versions: list[dict[str, Any]], state: str | None = None) -> Text:
    """The versions in words; the one desired now is marked, with its state."""
    text = Text("versions", style="bold")
    text.append(" (newest first; ctrl+z goes back one action)\n", style="grey50")
    if not versions:
        text.append("  none in the lab's history yet", style="grey50")
    for version in versions:
        now = version["current"]
        text.append("  ● " if now else "    ", style="green" if now else "")
        text.append(version["short"], style="bold" if now else "")
        where = ", ".join(version["servers"]) or "no server (kept)"
        text.append(f"  on {where}", style="" if now else "grey50")
        if now and state:
            text.append(f" ({state} now)", style="green" if state == "deployed" else "yellow")
        newest = version["commits"][0]["summary"] if version["commits"] else ""
        text.append(f"  · {version['source'] or '?'} · {newest}\n", style="grey50")
    return text


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
