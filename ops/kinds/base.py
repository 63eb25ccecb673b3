"""The shape every resource kind has, so the engine can drive kinds it has never heard of."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from llmops.ops.errors import SpecError as SpecError  # where every kind and the CLI look for it

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_HINT = "use 1-63 lowercase letters, digits or '-', starting with a letter or digit"


class Spec(BaseModel):
    """Desired state of one resource; the TOML file holds it without the name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description=NAME_HINT)

    def to_toml_dict(self) -> dict[str, Any]:
        """What goes in the file: no name (the file name is the name), no unset optionals."""
        return self.model_dump(mode="json", exclude={"name"}, exclude_none=True)


class Observed(BaseModel):
    """What a kind's observe found on the host, typed: each kind declares its own fields, and
    its pure plan reads them as attributes (the plan cases build them from TOML)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class StepData:
    """A step's payload; each kind subclasses it with the fields its apply reads."""


@dataclass(frozen=True)
class Step:
    """One thing reconcile will do; `argv` is set where the step is a single command."""

    verb: str
    detail: str
    argv: tuple[str, ...] = ()
    data: StepData = field(default_factory=StepData, compare=False)


@dataclass
class Check:
    """One item of a post-action checklist, journalled with its result."""

    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Blocker:
    """Why going back to a former spec cannot work right now (e.g. host gone)."""

    reason: str


Progress = Callable[[str], None]
"""Receives short human lines while long work runs (log lines, download progress)."""


def no_progress(_line: str) -> None:
    """The progress sink for callers that do not show progress."""


Ref = tuple[str, str]
"""A resource by (kind, name): ("host", "g1"), ("server", "qwen")."""


@dataclass
class Context:
    """What admission checks may consult: every desired spec and the last observed facts."""

    desired: dict[Ref, Spec]
    facts: Callable[[str, str], dict[str, Any] | None]

    def spec(self, kind: str, name: str) -> Spec | None:
        return self.desired.get((kind, name))


SpecT = TypeVar("SpecT", bound=Spec)
ObservedT = TypeVar("ObservedT", bound=Observed)


class Kind(Generic[SpecT, ObservedT]):
    """Base of every resource kind: observe -> plan (pure) -> apply, plus a checklist."""

    name: ClassVar[str]
    folder: ClassVar[str]
    Spec: ClassVar[type[Spec]]
    order: ClassVar[int] = 50
    """Hosts come first when things are created and last when they are removed."""

    def depends_on(self, spec: SpecT) -> dict[str, Ref]:
        """What the resource stands on, by the spec field naming it: {"host": ("host", "g1")}.

        The engine refuses a spec whose dependency is not in the lab (naming the field), and
        the removal of a resource that another still depends on; the kind writes neither."""
        return {}

    def host_of(self, spec: SpecT) -> str | None:
        """The host the resource's processes run on (its `host` dependency by default): where
        a revert that could not reach it must be finished, and whose processes it claims."""
        dependency = self.depends_on(spec).get("host")
        return dependency[1] if dependency else None

    def hosts_of(self, spec: SpecT) -> list[str]:
        """Every host the resource's processes run on (a cluster spans several): those whose
        processes it claims. One host, `host_of`, by default."""
        host = self.host_of(spec)
        return [host] if host else []

    def owns_process(self, spec: SpecT, proc_name: str) -> bool:
        """Whether the detached process of this name on the resource's host is the resource's
        own; a process llmops started that no desired spec claims is shown as unclaimed."""
        return False

    def admit(self, spec: SpecT, context: Context) -> None:
        """Cross-resource checks before anything is written; raise SpecError."""

    def admit_removal(self, name: str, context: Context) -> None:
        """Checks before a resource is removed, beyond "nobody depends on it"; raise SpecError."""

    def preflight(self, spec: SpecT, hosts: HostPool) -> None:
        """Checks that need the host but change nothing (a path exists, the host key is
        known); run before the action is journalled, so a refusal writes nothing."""

    def observe(self, spec: SpecT, hosts: HostPool) -> ObservedT:
        """Facts about the resource as it is on its host; changes nothing."""
        raise NotImplementedError

    def plan(
        self, desired: SpecT | None, current: SpecT | None, observed: ObservedT
    ) -> list[Step]:
        """Pure: the steps that take what was observed to what is desired."""
        raise NotImplementedError

    def apply(
        self, step: Step, spec: SpecT | None, hosts: HostPool, progress: Progress
    ) -> dict[str, Any]:
        """Carry out one step; returns facts worth journalling."""
        raise NotImplementedError

    def validate(self, spec: SpecT, hosts: HostPool) -> list[Check]:
        """The checklist run after every action and rollback that leaves the resource present."""
        return []

    def validate_absent(self, spec: SpecT, hosts: HostPool) -> list[Check]:
        """The checklist after the resource was removed (default: nothing left to check)."""
        return []

    def readiness(self, before: SpecT | None, hosts: HostPool) -> list[Blocker]:
        """Why a rollback to `before` would fail now; empty when it can go ahead."""
        return []


@runtime_checkable
class HasLogs(Protocol):
    """A kind whose resources have a log the console can tail."""

    def logs(self, spec: Spec, hosts: HostPool, lines: int = 100) -> list[str]: ...


@dataclass(frozen=True)
class LaunchCommand:
    """The exact command a process of a resource is started with (what an operator pastes
    into a bug report): argv and the environment llmops adds to the host's."""

    proc: str
    argv: list[str]
    env: dict[str, str]


@runtime_checkable
class HasCommand(Protocol):
    """A kind whose resources run as processes started from a command llmops builds."""

    def commands(self, spec: Spec, hosts: HostPool) -> list[LaunchCommand]: ...


@runtime_checkable
class Restartable(Protocol):
    """A kind whose resources can be restarted without changing the spec."""

    def restart(self, spec: Spec, hosts: HostPool, progress: Progress) -> None: ...


@dataclass
class Sample:
    """One poll of one resource's telemetry, whatever its kind, keyed by its ref
    ("server/qwen", "run/lora-7"): `values` by metric name; `up` false when it did not answer."""

    ref: str
    at: float
    up: bool = True
    values: dict[str, float | None] = field(default_factory=dict)

    def get(self, metric: str) -> float | None:
        return self.values.get(metric)


@dataclass(frozen=True)
class Metric:
    """One series a kind's telemetry reports: its key in `Sample.values` and how it reads."""

    name: str
    label: str
    fmt: str = "{:.1f}"


class Sampler(Protocol):
    """Samples one resource, keeping between polls what that needs (a tunnel, counters)."""

    def sample(self) -> dict[str, float | None] | None:
        """The values now; None when the resource does not answer."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class HasTelemetry(Protocol):
    """A kind whose resources report numbers over time: `metrics` says what, `sampler` how.
    The rollback layer polls and stores every kind's samples alike (one table, by ref)."""

    metrics: ClassVar[tuple[Metric, ...]]

    def sampler(self, spec: Spec, hosts: HostPool) -> Sampler: ...


@runtime_checkable
class Summarizes(Protocol):
    """A kind whose resources have a one-word state and a row of facts, for lists and views."""

    def status(self, spec: Spec, hosts: HostPool, answering: bool | None = None) -> str:
        """Observed now, in a word; `answering`: whether it answered its last poll (None: the
        kind asks itself if it needs to)."""
        ...

    def summary(self, spec: Spec, status: str, latest: Sample | None) -> dict[str, Any]:
        """Pure: the row `llmops KIND list --json` prints and views show."""
        ...


class BenchResult(Protocol):
    """What a load test reports: its numbers, and a few of the errors it met."""

    error_samples: list[str]

    def summary(self) -> dict[str, float | int | None]: ...


@runtime_checkable
class Benchable(Protocol):
    """A kind whose resources take a bounded load test (through the host's tunnel)."""

    def bench(
        self,
        spec: Spec,
        hosts: HostPool,
        *,
        requests: int,
        concurrency: int,
        max_tokens: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> BenchResult: ...


@runtime_checkable
class HasProgress(Protocol):
    """A kind whose resources do long work in steps (a training run): its progress records,
    oldest first, for a progress bar, an ETA and a loss chart (step, loss, eval_loss...)."""

    def progress_points(self, spec: Spec, hosts: HostPool) -> list[dict[str, Any]]: ...


@runtime_checkable
class HasReport(Protocol):
    """A kind that keeps a report per resource (a run's dataset screening): a JSON object,
    or None when there is none yet."""

    def report(self, spec: Spec, hosts: HostPool) -> dict[str, Any] | None: ...


@runtime_checkable
class RollbackChecks(Protocol):
    """A kind with checks too costly for every action, run after a rollback only (the
    gateway's fallback drill: a drill proxy per model with fallbacks)."""

    def rollback_checks(self, spec: Spec, hosts: HostPool) -> list[Check]: ...


@dataclass
class Resources:
    """What one job (a server, a training run) holds on its host, for the policy's quotas:
    the GPU ids its processes see, their count, and the GiB of RAM it asks for (None:
    not known before it starts). `idle`: it holds nothing now (a stopped run)."""

    host: str
    gpu_ids: list[int] = field(default_factory=list)
    gpu_count: int = 0
    ram_gib: float | None = None
    idle: bool = False


@runtime_checkable
class HasResources(Protocol):
    """A kind that says itself what its resources hold (the policy reads the spec's fields
    for the kinds that do not): from the spec and its host's last probe (None: never probed)."""

    def resources(self, spec: Spec, facts: dict[str, Any] | None) -> Resources | None: ...
