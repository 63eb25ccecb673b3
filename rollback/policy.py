"""The operator's policy file (`policy.toml` in the lab): quotas, allowed endpoints, data dirs
and model ids, checked at admission before anything is written (issue 13).

The file is the operator's, not desired state: it is read from the lab's folder as it is now,
so a tighter rule applies to the next action at once. Each refusal is a SpecError naming the
spec's field, the rule (`jobs.max_gpus = 2`) and the file to change; a policy file that does
not parse or validate is a LabFileError naming the file and the line. Removals are never
refused (taking something away cannot break a quota)."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmops.ops.kinds.base import HasResources, Resources, Spec, SpecError
from llmops.ops.kinds.host.spec import HostSpec
from llmops.ops.kinds.hoststate import has_gpus
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.launch import cpu_kvcache_gib
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.validate import walk
from llmops.rollback.kinds import KINDS, kind_of
from llmops.rollback.lab import LabFileError

if TYPE_CHECKING:
    from llmops.ops.kinds.base import Context
    from llmops.rollback.changes import Change
    from llmops.rollback.lab import Lab

POLICY_FILE = "policy.toml"
GIB = 2**30
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Jobs(Section):
    """Per job (a server, a training run): what one may ask for."""

    max_gpus: int = Field(default=8, ge=0, le=4096, description="GPUs one job may use.")
    max_ram_gib: float = Field(default=256, ge=0, le=1 << 20, description="GiB of RAM per job.")


class Endpoints(Section):
    """Where hosts and URLs may point: exact names, globs (`*.lab.example`) or CIDRs."""

    allowed: list[str] | None = Field(default=None, description="None: anywhere.")

    @field_validator("allowed")
    @classmethod
    def _entries(cls, v: list[str] | None) -> list[str] | None:
        for entry in v or []:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a CIDR like 10.0.0.0/8") from None
            elif not re.fullmatch(r"[A-Za-z0-9*?.:\[\]-]{1,253}", entry):
                raise ValueError(f"{entry!r}: give a host name, a glob like *.lab or a CIDR")
        return v


class Data(Section):
    """Folders data may come from, beside each host's own `data_dirs`."""

    allowed_dirs: list[str] | None = Field(default=None, description="None: any folder.")

    @field_validator("allowed_dirs")
    @classmethod
    def _dirs(cls, v: list[str] | None) -> list[str] | None:
        for d in v or []:
            if not (d.startswith("/") or d.startswith("~/")) or ".." in d.split("/"):
                raise ValueError(f"{d!r}: give absolute folders or ones under ~/, no '..'")
        return None if v is None else [d.rstrip("/") or "/" for d in v]


class Models(Section):
    """Which model ids may be served or trained on (the spec's own rule always holds: a hub
    id org/name or an absolute path); `allowed` is a regular expression the whole id must
    match, e.g. a registry's `^(openai|huggingface|custom)/[\\w\\-\\.]+:\\d+\\.\\d+$`."""

    allowed: str | None = Field(default=None, description="None: hub ids and local paths.")

    @field_validator("allowed")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return v


class Hosts(Section):
    """Across everything on one host (servers and runs together)."""

    quota: bool = Field(default=True, description="GPUs and RAM summed per host, vs its probe.")
    max_ram_share: float = Field(
        default=0.9, gt=0, le=1, description="Share of a host's RAM its jobs may ask for."
    )


class Policy(Section):
    """The whole file; every section optional, every rule with its default."""

    jobs: Jobs = Jobs()
    endpoints: Endpoints = Endpoints()
    data: Data = Data()
    models: Models = Models()
    hosts: Hosts = Hosts()


def policy_path(lab_path: Path) -> Path:
    return lab_path / POLICY_FILE


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line a validation error's location points at: its key inside its [section], or
    the section's own header."""
    names = [str(p) for p in loc if isinstance(p, str)]
    if not names:
        return None
    section, key = (names[0], names[1]) if len(names) > 1 else (None, names[0])
    current: str | None = None
    header = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] ")
            if current == (section or key):
                header = header or number
        elif current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
        elif current is None and re.match(rf"{re.escape(section or key)}\b", stripped):
            return number
    return header


def load_policy(lab_path: Path) -> Policy:
    """The lab's policy (defaults when the file is absent); a bad file names file and line."""
    path = policy_path(lab_path)
    if not path.is_file():
        return Policy()
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabFileError(str(path), f"not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        line = _line_of(text, tuple(first["loc"]))
        at = f"line {line}: " if line else ""
        raise LabFileError(str(path), f"{at}{where}: {first['msg']}") from None


# -- what a job asks for ---------------------------------------------------------------------
def resources(spec: Spec, facts: dict[str, Any] | None) -> Resources | None:
    """The GPUs and RAM a resource's processes hold; None for what runs no job (hosts,
    adapters, an attached index). A kind that implements HasResources says it itself."""
    kind = kind_of(spec)
    if isinstance(kind, HasResources):
        return kind.resources(spec, facts)
    gpu_host = has_gpus(facts) if facts is not None else None
    host_gpus = [int(g.get("index", i)) for i, g in enumerate((facts or {}).get("gpus") or [])]
    if isinstance(spec, ServerSpec):
        ranks = spec.tp * spec.pp
        if gpu_host is False:
            return Resources(host=spec.host, gpu_ids=[], gpu_count=0,
                             ram_gib=float(cpu_kvcache_gib(spec, facts or {})))
        ids = list(spec.gpus) if spec.gpus else list(range(ranks))
        return Resources(host=spec.host, gpu_ids=ids, gpu_count=len(ids), ram_gib=None)
    if isinstance(spec, RunSpec):
        if spec.state != "running":
            return Resources(host=spec.host, gpu_ids=[], gpu_count=0, ram_gib=None, idle=True)
        if gpu_host is False:
            return Resources(host=spec.host, gpu_ids=[], gpu_count=0, ram_gib=None)
        ids = list(spec.gpus) if spec.gpus else (host_gpus if gpu_host else [0])
        return Resources(host=spec.host, gpu_ids=ids, gpu_count=len(ids), ram_gib=None)
    return None


# -- the checks ------------------------------------------------------------------------------
@dataclass
class Refusal:
    field: str
    rule: str
    message: str
    fix: str = "ask for less"
    """What to do instead of changing the rule."""


@dataclass
class HostUse:
    """What every job on one host asks for, for the quota and `llmops policy show`."""

    host: str
    gpus_total: int | None
    ram_total_gib: float | None
    jobs: dict[str, Resources] = field(default_factory=dict)

    def gpu_count(self) -> int:
        return sum(r.gpu_count for r in self.jobs.values() if not r.idle)

    def ram_gib(self) -> float:
        return sum(r.ram_gib or 0.0 for r in self.jobs.values() if not r.idle)


ENDED = ("done", "failed", "stopped")
"""A run's states (ops/kinds/run/summary.py) in which its trainer has let go of its GPUs."""


def ended(spec: Spec, recorded: dict[str, Any] | None) -> bool:
    """A run whose spec still says `running` but whose last observed state, for this very
    config (`cfg`), is done, failed or stopped: its trainer exited, it holds nothing. The
    state is the one recorded in the journal's observed facts (`state`, `cfg`); without one
    the run counts as holding what it asks for."""
    return (isinstance(spec, RunSpec) and recorded is not None
            and recorded.get("state") in ENDED and recorded.get("cfg") == spec.cfg_hash())


def host_use(context: Context, changed: frozenset[str] = frozenset()) -> dict[str, HostUse]:
    """Every host's jobs, from the desired specs (the changes already in them). A run that
    ended holds nothing, unless this change set touches it (a retry or a new config starts
    it again)."""
    found: dict[str, HostUse] = {}
    for (kind, name), spec in sorted(context.desired.items()):
        host = KINDS[kind].host_of(spec)
        if host is None:
            continue
        facts = context.facts("host", host)
        got = resources(spec, facts)
        if got is None:
            continue
        if f"{kind}/{name}" not in changed and ended(spec, context.facts(kind, name)):
            got = Resources(host=got.host, idle=True)
        if host not in found:
            gpus = facts.get("gpus") if facts else None
            ram = (facts or {}).get("ram_total_bytes")
            found[host] = HostUse(host, len(gpus) if gpus is not None else None,
                                  ram / GIB if ram else None)
        found[host].jobs[f"{kind}/{name}"] = got
    return found


def allowed_endpoint(address: str, allowed: list[str]) -> bool:
    """A host name against names and globs; an IP literal against CIDRs and exact entries."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        ip = None
    for entry in allowed:
        if "/" in entry:
            if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                return True
        elif fnmatch.fnmatchcase(address.lower(), entry.lower()):
            return True
    return False


def under(path: str, folders: list[str]) -> bool:
    clean = path.rstrip("/")
    return any(clean == d or clean.startswith(d.rstrip("/") + "/") for d in folders)


def _endpoints(spec: Spec, rules: Policy) -> list[Refusal]:
    allowed = rules.endpoints.allowed
    if allowed is None:
        return []
    rule = f"endpoints.allowed = {allowed}"
    found = []
    if isinstance(spec, HostSpec) and spec.address and not allowed_endpoint(spec.address, allowed):
        found.append(Refusal("address", rule, f"{spec.address} is not an allowed endpoint",
                             "use an allowed address"))
    for path, value in walk(spec.to_toml_dict()):
        if isinstance(value, str) and URL.match(value):
            netloc = urlsplit(value).hostname or ""
            if not allowed_endpoint(netloc, allowed):
                found.append(Refusal(path, rule, f"{netloc or value} is not an allowed endpoint",
                                     "use an allowed address"))
    return found


def _data_dirs(spec: Spec, rules: Policy) -> list[Refusal]:
    allowed = rules.data.allowed_dirs
    if allowed is None:
        return []
    rule = f"data.allowed_dirs = {allowed}"
    paths: list[tuple[str, str]] = []
    if isinstance(spec, HostSpec):
        paths = [(f"data_dirs[{i}]", d) for i, d in enumerate(spec.data_dirs)]
    elif isinstance(spec, RunSpec):
        paths = [("dataset", spec.dataset)] + (
            [("validation", spec.validation)] if spec.validation else [])
    elif isinstance(spec, IndexSpec):
        paths = [(f, v) for f, v in (("source", spec.source), ("eval_set", spec.eval_set)) if v]
    return [Refusal(f, rule, f"{p} is outside the allowed data folders",
                    "put the data under an allowed folder")
            for f, p in paths if not under(p, allowed)]


def _models(spec: Spec, rules: Policy) -> list[Refusal]:
    pattern = rules.models.allowed
    if pattern is None:
        return []
    fields: dict[str, str] = {}
    if isinstance(spec, ServerSpec):
        fields["model"] = spec.model_id()  # org/name:TAG when pinned to a revision
    elif isinstance(spec, RunSpec):
        fields["base"] = spec.model_id()  # org/name:TAG when pinned to a revision
    return [Refusal(f, f"models.allowed = {pattern!r}", f"{v!r} is not an allowed model id",
                    "use an id the rule allows")
            for f, v in fields.items() if not re.fullmatch(pattern, v)]


def _job(spec: Spec, got: Resources, rules: Policy) -> list[Refusal]:
    found = []
    gpu_field = "gpus" if getattr(spec, "gpus", None) else ("tp" if isinstance(spec, ServerSpec)
                                                               else "gpus")
    if got.gpu_count > rules.jobs.max_gpus:
        found.append(Refusal(gpu_field, f"jobs.max_gpus = {rules.jobs.max_gpus}",
                             f"asks for {got.gpu_count} GPUs"))
    if got.ram_gib is not None and got.ram_gib > rules.jobs.max_ram_gib:
        ram_field = "cpu_kvcache_gib" if isinstance(spec, ServerSpec) else "ram"
        found.append(Refusal(ram_field, f"jobs.max_ram_gib = {rules.jobs.max_ram_gib:g}",
                             f"asks for {got.ram_gib:g} GiB of RAM"))
    return found


def _quota(ref: str, spec: Spec, use: HostUse, rules: Policy) -> list[Refusal]:
    """One changed job against the others on its host: shared GPU ids, more GPUs or RAM than
    the host's probe reports."""
    if not rules.hosts.quota or ref not in use.jobs or use.jobs[ref].idle:
        return []
    mine = use.jobs[ref]
    found = []
    gpu_field = "gpus" if getattr(spec, "gpus", None) else "tp" if isinstance(spec, ServerSpec) \
        else "gpus"
    for other, theirs in use.jobs.items():
        shared = sorted(set(mine.gpu_ids) & set(theirs.gpu_ids))
        if other != ref and not theirs.idle and shared:
            found.append(Refusal(gpu_field, "hosts.quota = true",
                                 f"GPU {shared} of {use.host} is already used by {other}"))
            break
    if use.gpus_total is not None and use.gpu_count() > use.gpus_total:
        found.append(Refusal(gpu_field, "hosts.quota = true",
                             f"jobs on {use.host} would use {use.gpu_count()} GPUs; its probe "
                             f"reports {use.gpus_total}"))
    if use.ram_total_gib and use.ram_gib() > use.ram_total_gib * rules.hosts.max_ram_share:
        found.append(Refusal("cpu_kvcache_gib" if isinstance(spec, ServerSpec) else "ram",
                             f"hosts.max_ram_share = {rules.hosts.max_ram_share:g}",
                             f"jobs on {use.host} would ask for {use.ram_gib():g} GiB of RAM; "
                             f"it has {use.ram_total_gib:.1f} GiB"))
    return found


def refusals(rules: Policy, changes: list[Change], context: Context) -> list[Refusal]:
    """Every rule a change set breaks (removals break none)."""
    found: list[Refusal] = []
    use = host_use(context, frozenset(f"{c.kind}/{c.name}" for c in changes))
    for ch in changes:
        spec = ch.spec
        if spec is None:
            continue
        found += _endpoints(spec, rules) + _data_dirs(spec, rules) + _models(spec, rules)
        host = KINDS[ch.kind].host_of(spec)
        got = resources(spec, context.facts("host", host) if host else None)
        if got is not None and not got.idle:
            found += _job(spec, got, rules)
            if host in use:
                found += _quota(f"{ch.kind}/{ch.name}", spec, use[host], rules)
    return found


def check_policy(lab: Lab, changes: list[Change], context: Context) -> None:
    """Raise SpecError naming the rule and the file to change when a change breaks policy."""
    rules = load_policy(lab.path)
    found = refusals(rules, changes, context)
    if found:
        first = found[0]
        raise SpecError(
            first.field,
            f"{first.message}: the policy rule {first.rule} refuses it",
            f"{first.fix}, or change the rule in {policy_path(lab.path)}",
        )
