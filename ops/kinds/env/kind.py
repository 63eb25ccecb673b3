"""The env kind: a host's Python environment (a venv holding exactly a set of pinned
packages) as a versioned, rollbackable resource.

One concept per module: `spec` (what is asked; the pin rules, the vLLM proposal), `plan`
(pure: spec + observed -> steps), `apply` (thin: observe, preflight, steps through envctl),
`hostcalls` (the host layout and the envctl calls), `wheelhouse` (downloads here, pushes
there), `checks` (the checklist), `summary` (state word and row). The host side is one
stdlib script, ops/hostside/envctl.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops import procs
from llmops.ops.kinds.base import Check, Kind, Progress, Ref, Sample, Spec, Step
from llmops.ops.kinds.env import apply as env_apply
from llmops.ops.kinds.env import checks as env_checks
from llmops.ops.kinds.env import summary as env_summary
from llmops.ops.kinds.env.hostcalls import proc_name
from llmops.ops.kinds.env.observed import EnvObserved
from llmops.ops.kinds.env.plan import plan_env
from llmops.ops.kinds.env.spec import EnvSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class EnvKind(Kind[EnvSpec, EnvObserved]):
    """Host environments: built beside the current venv, switched by symlink, rolled back by
    switching back (kept) or rebuilding from the recorded manifest."""

    name: ClassVar[str] = "env"
    folder: ClassVar[str] = "envs"
    Spec: ClassVar[type[Spec]] = EnvSpec
    order: ClassVar[int] = 20
    """Right after hosts: what runs on a host stands on its environment."""

    def __init__(self) -> None:
        self._seen = env_summary.Seen()

    def depends_on(self, spec: EnvSpec) -> dict[str, Ref]:
        return {"host": ("host", spec.host)}

    def owns_process(self, spec: EnvSpec, proc: str) -> bool:
        return proc == proc_name(spec.name)

    def preflight(self, spec: EnvSpec, hosts: HostPool) -> None:
        env_apply.preflight(spec, hosts)

    def observe(self, spec: EnvSpec, hosts: HostPool) -> EnvObserved:
        return env_apply.observe(spec, hosts, freeze=True)  # a drifted venv is repaired

    def plan(self, desired: EnvSpec | None, current: EnvSpec | None, observed: EnvObserved
             ) -> list[Step]:
        return plan_env(desired, current, observed)

    def apply(self, step: Step, spec: EnvSpec | None, hosts: HostPool, progress: Progress
              ) -> dict[str, Any]:
        assert spec is not None
        return env_apply.apply(step, spec, hosts, progress)

    def restart(self, spec: EnvSpec, hosts: HostPool, progress: Progress) -> None:
        """Reconcile the host to the committed spec, which stays as it is (`llmops env up
        NAME` with nothing asked, the Envs view's r): what an interrupted action left is
        picked up — its build finished (a switch, no reinstall) or still running (followed)."""
        env_apply.reconcile(spec, hosts, progress)

    def validate(self, spec: EnvSpec, hosts: HostPool) -> list[Check]:
        return env_checks.checklist(spec, hosts)

    def validate_absent(self, spec: EnvSpec, hosts: HostPool) -> list[Check]:
        return env_checks.checklist_absent(spec, hosts)

    # -- summary (Summarizes) ----------------------------------------------------------
    def status(self, spec: EnvSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return env_summary.status(spec, hosts, self._seen)

    def summary(self, spec: EnvSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return env_summary.summary(spec, status, latest, self._seen.get(spec.name))

    # -- logs (HasLogs): the builds' output (pip's) -------------------------------------
    def logs(self, spec: EnvSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        return procs.tail(hosts.transport(spec.host), proc_name(spec.name), lines)

    # -- report (HasReport): the freeze against the manifest and the pins -----------------
    def report(self, spec: EnvSpec, hosts: HostPool) -> dict[str, Any] | None:
        return env_summary.report(spec, hosts, self._seen)
