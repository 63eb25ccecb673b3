"""The adapter kind: a LoRA adapter version (by sha256) hot-loaded into a vLLM server.

The package holds one concept per module: `spec` (what is asked), `plan` (pure: spec +
observed -> steps), `apply` (thin: observe, preflight, steps through the runtime LoRA API),
`store` (the host layout and host-side scripts), `checks` (the checklist), `summary` (state
word and row). A server restart loses runtime adapters: observe then sees it unloaded and the
next reconcile loads it again from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops.kinds.adapter import apply as adapter_apply
from llmops.ops.kinds.adapter import checks as adapter_checks
from llmops.ops.kinds.adapter import summary as adapter_summary
from llmops.ops.kinds.adapter.observed import AdapterObserved
from llmops.ops.kinds.adapter.plan import plan_adapter
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.adapter.store import VLLM_DEFAULT_MAX_LORA_RANK
from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    Progress,
    Ref,
    Sample,
    Spec,
    SpecError,
    Step,
)
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class AdapterKind(Kind[AdapterSpec, AdapterObserved]):
    """LoRA adapters: stored by sha on the server's host, loaded at run time, reloaded in
    place (prefix cache reset) when the version changes, unloaded on removal."""

    name: ClassVar[str] = "adapter"
    folder: ClassVar[str] = "adapters"
    Spec: ClassVar[type[Spec]] = AdapterSpec
    order: ClassVar[int] = 80

    def __init__(self) -> None:
        self._seen = adapter_summary.Seen()

    # -- admission -------------------------------------------------------------------
    def depends_on(self, spec: AdapterSpec) -> dict[str, Ref]:
        found: dict[str, Ref] = {}
        if spec.server:
            found["server"] = ("server", spec.server)
        if spec.run:
            found["run"] = ("run", spec.run)
        if spec.host:
            found["host"] = ("host", spec.host)
        return found

    def admit(self, spec: AdapterSpec, context: Context) -> None:
        """The server takes runtime adapters of this rank; the name is not its base's."""
        server = context.spec("server", spec.server) if spec.server else None
        if not isinstance(server, ServerSpec):
            return
        if not (server.enable_lora and server.runtime_lora):
            raise SpecError(
                "server",
                f"server {server.name} does not take adapters at run time",
                f"set runtime_lora = true (and enable_lora) on it: llmops server up "
                f"{server.name} --enable-lora --runtime-lora",
            )
        if spec.name == server.api_model():
            raise SpecError(
                "name",
                f"{spec.name} is the name server {server.name} serves its base model under",
                "pick another adapter name",
            )
        run = context.spec("run", spec.run) if spec.run else None
        if isinstance(run, RunSpec):
            limit = server.max_lora_rank or VLLM_DEFAULT_MAX_LORA_RANK
            if run.r > limit:
                raise SpecError(
                    "server",
                    f"run {run.name} trains rank r = {run.r}, above server {server.name}'s "
                    f"max_lora_rank {limit}",
                    f"raise max_lora_rank to {run.r} or more on {server.name}, or train with "
                    f"r <= {limit}",
                )

    def preflight(self, spec: AdapterSpec, hosts: HostPool) -> None:
        """The source is on its host with the spec's sha (or the store has it), its rank fits
        the server, merge_to is free."""
        adapter_apply.preflight(spec, hosts)

    # -- observe / plan / apply --------------------------------------------------------
    def observe(self, spec: AdapterSpec, hosts: HostPool) -> AdapterObserved:
        return adapter_apply.observe(spec, hosts)

    def plan(
        self, desired: AdapterSpec | None, current: AdapterSpec | None, observed: AdapterObserved
    ) -> list[Step]:
        return plan_adapter(desired, current, observed)

    def apply(
        self, step: Step, spec: AdapterSpec | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        assert spec is not None
        return adapter_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: AdapterSpec, hosts: HostPool) -> list[Check]:
        return adapter_checks.checklist(spec, hosts)

    def validate_absent(self, spec: AdapterSpec, hosts: HostPool) -> list[Check]:
        return adapter_checks.checklist_absent(spec, hosts)

    # -- summary (Summarizes) ----------------------------------------------------------
    def status(self, spec: AdapterSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return adapter_summary.status(spec, hosts, self._seen)

    def summary(self, spec: AdapterSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return adapter_summary.summary(spec, status, latest, self._seen.get(spec))
