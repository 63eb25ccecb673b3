"""The run kind: a LoRA / QLoRA fine-tuning run on a host, trained by the host-side trainer
(transformers.Trainer + peft) as a detached process.

The package holds one concept per module: `spec` (what is asked), `layout` (where its files
live, the trainer's config, argv and env: pure), `plan` (pure: spec + observed facts ->
steps), `apply` (thin: observe, preflight, carry out steps), `checks` (the checklist),
`memory` (the estimate: pure), `summary` and `telemetry` (a word, a row, numbers over time),
`hostread` (the stdlib script that reads a run's folder on the host). See DESIGN.md "Runs as
built" for why outputs are kept per training config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops import procs
from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    LaunchCommand,
    Metric,
    Progress,
    Ref,
    Sample,
    Spec,
    Step,
)
from llmops.ops.kinds.hoststate import host_facts
from llmops.ops.kinds.run import apply as run_apply
from llmops.ops.kinds.run import checks as run_checks
from llmops.ops.kinds.run import layout
from llmops.ops.kinds.run import summary as run_summary
from llmops.ops.kinds.run import telemetry as run_telemetry
from llmops.ops.kinds.run.hostcalls import hostread
from llmops.ops.kinds.run.observed import RunObserved, RunStep
from llmops.ops.kinds.run.plan import plan_run
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.run.telemetry import RunSampler

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class RunKind(Kind[RunSpec, RunObserved]):
    """Fine-tuning runs: prepared (data screened) per training config, trained detached,
    stopped gracefully, resumed from their newest checkpoint, released but never deleted."""

    name: ClassVar[str] = "run"
    folder: ClassVar[str] = "runs"
    Spec: ClassVar[type[Spec]] = RunSpec
    order: ClassVar[int] = 70

    # -- admission -------------------------------------------------------------------
    def depends_on(self, spec: RunSpec) -> dict[str, Ref]:
        return {"host": ("host", spec.host)}

    def owns_process(self, spec: RunSpec, proc_name: str) -> bool:
        return proc_name in layout.proc_names(spec)

    def admit(self, spec: RunSpec, context: Context) -> None:
        """No host I/O: what the host's last probe already decides (QLoRA, GPU ids)."""
        facts = context.facts("host", spec.host)
        if facts:
            run_apply.refuse_on_facts(spec, facts)

    def preflight(self, spec: RunSpec, hosts: HostPool) -> None:
        """Read-only on the host: data files inspected (data dirs, symlinks, fields), the base
        there, the memory estimate; a refusal writes nothing."""
        run_apply.preflight(spec, hosts)

    # -- observe / plan / apply ------------------------------------------------------
    def observe(self, spec: RunSpec, hosts: HostPool) -> RunObserved:
        return run_apply.observe(spec, hosts)

    def plan(
        self, desired: RunSpec | None, current: RunSpec | None, observed: RunObserved
    ) -> list[Step]:
        return plan_run(desired, current, observed)

    def apply(
        self, step: Step, spec: RunSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        assert spec is not None
        return run_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: RunSpec, hosts: HostPool) -> list[Check]:
        return run_checks.checklist(spec, hosts)

    def validate_absent(self, spec: RunSpec, hosts: HostPool) -> list[Check]:
        return run_checks.checklist_absent(spec, hosts)

    def restart(self, spec: RunSpec, hosts: HostPool, progress: Progress) -> None:
        """Resume as committed: a trainer that runs is stopped gracefully (it saves a
        checkpoint), then the plan starts it again from its newest checkpoint. What brings an
        interrupted run (killed, or its host rebooted) back without a spec change."""
        if spec.state != "running":
            raise ValueError(f"run {spec.name} is stopped: resume it (state = running)")
        t = hosts.transport(spec.host)
        if procs.status(t, spec.proc_name()).running:
            stop = Step("stop", "restart", (), RunStep(proc=spec.proc_name()))
            run_apply.apply(stop, spec, hosts, progress)
        for step in plan_run(spec, spec, self.observe(spec, hosts)):
            progress(f"{step.verb}: {step.detail}")
            run_apply.apply(step, spec, hosts, progress)

    # -- what the console reads ------------------------------------------------------
    def commands(self, spec: RunSpec, hosts: HostPool) -> list[LaunchCommand]:
        """What a start runs: from the pure plan against a host where nothing runs yet."""
        observed = RunObserved(facts=host_facts(hosts, spec.host))
        return [
            LaunchCommand(str(getattr(s.data, "proc", "")), list(s.argv),
                          dict(getattr(s.data, "env", {})))
            for s in plan_run(spec.model_copy(update={"state": "running"}), None, observed)
            if s.verb == "start"
        ]

    def logs(self, spec: RunSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        return run_apply.logs(spec, hosts, lines)

    def progress_points(self, spec: RunSpec, hosts: HostPool) -> list[dict[str, Any]]:
        """Every progress record of the cfg in use (start, log, eval, checkpoint, done...)."""
        found = hostread(
            hosts.transport(spec.host), "points", self._run_dir(spec, hosts)
        )
        return list(found.get("points") or [])

    def report(self, spec: RunSpec, hosts: HostPool) -> dict[str, Any] | None:
        """The screening report of the cfg in use; None before screening."""
        found = hostread(
            hosts.transport(spec.host), "report", self._run_dir(spec, hosts)
        )
        report = found.get("report")
        return dict(report) if isinstance(report, dict) else None

    def _run_dir(self, spec: RunSpec, hosts: HostPool) -> str:
        return layout.run_dir(host_facts(hosts, spec.host), spec.name)

    metrics: ClassVar[tuple[Metric, ...]] = run_telemetry.METRICS

    def sampler(self, spec: RunSpec, hosts: HostPool) -> RunSampler:
        return RunSampler(spec, hosts)

    def status(self, spec: RunSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return run_summary.status(spec, hosts, answering)

    def summary(self, spec: RunSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return run_summary.summary(spec, status, latest)

    def state_facts(self, spec: RunSpec, status: str) -> dict[str, Any] | None:
        """What a status observed, for the journal's facts cache: the policy's GPU quota lets a
        run go whose trainer ended (done, failed, stopped) for this very config."""
        return run_summary.state_facts(spec, status)
