"""`llmops adapter ...`: LoRA adapters deployed (hot-loaded into a vLLM server by sha256),
undeployed, merged into a new base folder, listed, and shown with every version they had.
The sha256 is read from the host (the run's final adapter, or the folder) before the action,
so the lab pins the exact content and a rollback reloads the earlier version by its sha."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from llmops.console.cli.common import (
    emit_json,
    engine_for_cli,
    esc,
    existing_spec,
    fail,
    json_option,
    out,
    print_rows,
    put_spec,
    refuse_if_read_only,
    remove_resource,
)
from llmops.console.cli.completion import names_of
from llmops.console.cli.runs import observed_state, options_given
from llmops.console.cli.spec_options import spec_options
from llmops.ops.kinds.adapter.spec import AdapterSpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine

SOURCES = ("run", "path", "host")


def with_sha(engine: Engine, fields: dict[str, Any]) -> AdapterSpec:
    """The spec with the sha256 its host reports for its source; the spec's shape (a source,
    not two) is checked first, so bad input is refused before any host is asked."""
    from llmops.console.presenters.adapter_words import STAND_IN_SHA, source_host

    shaped = AdapterSpec.model_validate({**fields, "sha256": STAND_IN_SHA})
    sha = engine.adapter_sha(shaped.run, shaped.path, source_host(engine.lab, shaped))
    return AdapterSpec.model_validate({**fields, "sha256": sha})


@click.group("adapter")
def adapter_group() -> None:
    """LoRA adapters hot-loaded into vLLM servers, pinned by the sha256 of their files."""


@adapter_group.command("deploy")
@click.argument("name", shell_complete=names_of("adapter"))
@spec_options(AdapterSpec, skip={"sha256"},
              refs={"run": "run", "host": "host", "server": "server"})
@json_option
def adapter_deploy(name: str, as_json: bool, **given: Any) -> None:
    """Deploy an adapter from a run's output (--run) or a folder (--path, on --host or the
    server's host) to a server; again, to deploy a new version or move it. Its sha256 is read
    from the host first."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("adapter deploy")
    values = options_given(AdapterSpec, given, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("adapter", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        if values.keys() & {"run", "path"}:  # a new source replaces the old one, and the
            for key in (*SOURCES, "merge_to"):  # old version's merge folder is not the new's
                fields.pop(key, None)
        fields.update(values)
        if not (fields.get("run") or fields.get("path")):
            fail("give the adapter's source: --run R or --path P", as_json=as_json)
        if current is None and not fields.get("server"):
            fail("a new adapter needs --server S (the vLLM server to load it into)",
                 as_json=as_json)
        put_spec(engine, "adapter", with_sha(engine, fields), "deployed", as_json)


@adapter_group.command("undeploy")
@click.argument("name", shell_complete=names_of("adapter"))
@json_option
def adapter_undeploy(name: str, as_json: bool) -> None:
    """Unload an adapter and remove it from the lab; its files stay in the host's store
    (roll back to bring it back)."""
    remove_resource("adapter undeploy", "adapter", name, f"adapter {name} undeployed", as_json)


@adapter_group.command("merge")
@click.argument("name", shell_complete=names_of("adapter"))
@click.option("--into", "into", required=True, metavar="DIR",
              help="A new model folder on the host (absolute path): base + adapter merged.")
@json_option
def adapter_merge(name: str, into: str, as_json: bool) -> None:
    """Merge an adapter into its base model (merge_and_unload) as a new model folder, which a
    server can then serve; an action (the folder is never deleted)."""
    refuse_if_read_only("adapter merge")
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "adapter", name, as_json)
        merged = AdapterSpec.model_validate({**spec.model_dump(), "merge_to": into})
        put_spec(engine, "adapter", merged, "merged", as_json)


@adapter_group.command("list")
@json_option
def adapter_list(as_json: bool) -> None:
    """Adapters with their server, source, version (short sha), state and load time."""
    from llmops.console.widgets.render import num
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "adapter")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "server", "state", "source", "version", "loaded", "load s")
        for r in rows:
            cells = (r["name"], r.get("server") or "-", r["state"], r.get("source", "?"),
                     r.get("sha", "?"), "yes" if r.get("loaded") else "no",
                     num(r.get("load_seconds"), "{:.2f}"))
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "adapters", "`llmops adapter deploy NAME --run R --server S`")


@adapter_group.command("show")
@click.argument("name", shell_complete=names_of("adapter"))
@json_option
def adapter_show(name: str, as_json: bool) -> None:
    """An adapter's spec, its state now, and every version it has had (newest first) with the
    servers each went to and the actions that put it there."""
    from llmops.console.presenters.adapter_words import adapter_versions, versions_text

    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "adapter", name, as_json)
        assert isinstance(spec, AdapterSpec)
        state = observed_state(engine, spec)
        versions = adapter_versions(engine.adapter_versions(name), spec)
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), "state": state,
                       "versions": versions})
            return
        for key, value in spec.model_dump().items():
            out.print(Text(f"{key:>10}: {value}"))
        out.print(Text(f"{'state':>10}: {state}", style="bold"))
        out.print(versions_text(versions, state))
