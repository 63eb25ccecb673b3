"""The console's one door to hosts, besides actions: restart (journalled), probe (facts
recorded unless read-only), logs, status, bench, host keys, the demo's model, and the last
undoable action of a resource; a host's processes are the Engine's too (rollback/leftovers.py).
The console imports from ops only spec and base types (an import-linter contract), so
whatever reaches a host goes through the Engine.

A mixin of the Engine: a restart takes the engine's lab lock, journal and checklist."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmops.ops.hostkeys import host_key_fingerprint
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.adapter.store import path_sha, run_sha
from llmops.ops.kinds.base import (
    Benchable,
    BenchResult,
    Check,
    HasCommand,
    HasLogs,
    HasProgress,
    HasReport,
    LaunchCommand,
    Progress,
    Restartable,
    Spec,
    SpecError,
    Step,
    no_progress,
)
from llmops.ops.kinds.host.probe import probe
from llmops.ops.kinds.host.spec import HostSpec
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.weights import make_tiny_model
from llmops.ops.procs import ProcInfo
from llmops.ops.transport import HostKeyError, TransportError
from llmops.rollback import summaries
from llmops.rollback.changes import ActionRefused, Change, who
from llmops.rollback.kinds import KINDS, kind_of
from llmops.rollback.lab import Lab, LabFileError, Ref, spec_path
from llmops.rollback.lock import current_command
from llmops.rollback.records import ActionRecord

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

__all__ = ["RESTART", "HostKeyError", "Operate", "ProcInfo", "TransportError", "newest_undoable"]
"""The transport's errors and the process record are re-exported: the console tells the errors
apart and shows processes, but imports nothing from ops beyond spec and base types."""

RESTART = "restart"
"""The journal kind of a restart: an operation beside the actions, with no desired change."""


def newest_undoable(actions: list[ActionRecord], ref: Ref) -> ActionRecord | None:
    """The newest succeeded action on `ref` not rolled back yet: what one ctrl+z (or
    `llmops rollback --last KIND/NAME`) undoes. A rollback is itself such an action; an
    operation (a restart) changed no desired state, so it is passed over."""
    for record in sorted(actions, key=lambda a: -a.id):
        if (ref in record.refs and record.status == "succeeded" and record.rolled_back_by is None
                and not record.is_operation):
            return record
    return None


class Operate:
    """What the console does to hosts other than actions (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool
    lock_wait: float
    records: bool
    progress_listeners: list[Callable[[int, str, str], None]]
    _validate_all: Callable[..., list[Check]]
    _reconcile: Callable[[int, Change, Spec | None, str], None]
    _record_facts: Callable[[], None]
    _fresh_facts: dict[Ref, dict[str, Any]]
    with_followers: Callable[[list[Change]], list[Change]]

    # -- journalled: a restart --------------------------------------------------------------
    def restart(self, kind: str, name: str) -> ActionRecord:
        """Stop and start a resource as its committed spec says, under the lab lock. No desired
        state changes, yet it is journalled like an action (who, when, the step and the
        checklist): a host changed, and History must say who did it. Its followers (what
        follows a dependency reconciled as it is: the servers and gateways on an env whose
        reconcile may switch its venv) are reconciled in the same operation and checked."""
        restartable = KINDS[kind]
        if not isinstance(restartable, Restartable):
            raise ActionRefused(f"a {kind} cannot be restarted")
        with self.lab.lock.hold(current_command(), wait=self.lock_wait):
            spec = self.lab.read_spec(kind, name, self.lab.head())
            if spec is None:
                raise SpecError(
                    "name", f"there is no {kind} named {name}", f"see `llmops {kind} list`"
                )
            change = Change(kind, name, spec)
            return self._operation(
                RESTART,
                change,
                f"{kind} {name} restarted",
                lambda progress: restartable.restart(spec, self.hosts, progress),
                self.with_followers([change])[1:],
            )

    def _operation(
        self, verb: str, change: Change, summary: str, run: Callable[[Progress], None],
        followers: list[Change] | None = None,
    ) -> ActionRecord:
        """Journal an operation as the engine journals an action, with no commit of its own:
        `started` (kind = verb), `committed` naming HEAD, its one step, then each follower
        reconciled as an action reconciles it (its steps journalled), the checklist of all,
        outcome. Nothing is reverted: no desired state changed."""
        journal = self.lab.journal
        began = time.monotonic()
        action_id = self.lab.next_action_id()
        head = self.lab.head()
        ref = f"{change.kind}/{change.name}"
        along = list(followers or [])
        journal.append(action_id, "started", {
            "kind": verb, "summary": summary, "who": who(),
            "refs": [list(change.ref), *(list(f.ref) for f in along)],
            "before_commit": head, "rollback_of": None, "specs": {},
        })
        journal.append(action_id, "committed", {"commit": head})

        def progress(line: str) -> None:
            for listener in self.progress_listeners:
                listener(action_id, ref, line)

        step: dict[str, Any] = {"ref": ref, "verb": verb, "detail": summary, "phase": "apply"}
        error = None
        try:
            run(progress)
        except Exception as exc:  # noqa: BLE001 - journalled and reported, never a crash
            error = str(exc) or type(exc).__name__
        journal.append(action_id, "step", {
            **step, "ok": error is None, "seconds": round(time.monotonic() - began, 3),
            **({"error": error} if error else {}),
        })
        self._fresh_facts = {}
        for follower in along if error is None else []:
            try:
                self._reconcile(action_id, follower, follower.spec, "apply")
            except Exception as exc:  # noqa: BLE001 - journalled (its step row) and reported
                error = f"{follower.kind} {follower.name}: {exc}"
                break
        if error is None:
            everything = [change, *along]
            self._validate_all(action_id, everything, {c.ref: c.spec for c in everything})
            self._record_facts()
        outcome = {"after_commit": head, "seconds": round(time.monotonic() - began, 3)}
        if error is None:
            journal.append(action_id, "succeeded", outcome)
        else:
            journal.append(action_id, "failed", {**outcome, "error": error, "reverted": False})
        record = journal.action(action_id)
        assert record is not None
        return record

    # -- going back ------------------------------------------------------------------------
    def last_undoable(self, kind: str, name: str) -> ActionRecord | None:
        """What ctrl+z on the resource (or `rollback --last KIND/NAME`) would roll back."""
        return newest_undoable(self.lab.journal.touching([(kind, name)]), (kind, name))

    def last_undoables(self, refs: list[Ref]) -> dict[Ref, ActionRecord]:
        """The same for many resources, reading the journal once."""
        actions = self.lab.journal.touching(refs)
        found = {ref: newest_undoable(actions, ref) for ref in refs}
        return {ref: record for ref, record in found.items() if record is not None}

    # -- reading hosts (nothing journalled) -------------------------------------------------
    def probe(self, spec: HostSpec, *, record: bool) -> dict[str, Any]:
        """Probe a host now; its facts are recorded unless `record` is off (a read-only
        console or CLI call writes nothing, not even the facts cache)."""
        facts = probe(spec, self.hosts, no_progress)
        if record:
            self.lab.journal.record_observed("host", spec.name, facts)
        return facts

    def planned(self, kind: str, desired: Spec | None, current: Spec | None) -> list[Step]:
        """What reconcile would do now to take a resource from `current` to `desired` (its
        kind observes it on its host, changing nothing, then plans): `llmops plan`."""
        where = desired or current
        if where is None:
            return []
        found = KINDS[kind]
        return found.plan(desired, current, found.observe(where, self.hosts))

    def status(self, spec: Spec, answering: bool | None = None) -> str:
        """The resource observed now, in one word (see rollback/summaries.py); what the kind
        keeps of it (a run's ended state) is recorded."""
        state = summaries.status(self.hosts, spec, answering)
        if self.records:
            summaries.record_state(self.lab.journal, spec, state)
        return state

    def logs(self, spec: Spec, lines: int = 100) -> list[str]:
        kind = kind_of(spec)
        if not isinstance(kind, HasLogs):
            raise ActionRefused(f"a {kind.name} has no log")
        return kind.logs(spec, self.hosts, lines)

    def bench(
        self,
        spec: Spec,
        *,
        requests: int,
        concurrency: int,
        max_tokens: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> BenchResult:
        """A bounded load test through the host's tunnel (ValueError: bounds exceeded)."""
        kind = kind_of(spec)
        if not isinstance(kind, Benchable):
            raise ActionRefused(f"a {kind.name} has no load test")
        return kind.bench(
            spec, self.hosts, requests=requests, concurrency=concurrency,
            max_tokens=max_tokens, progress=progress,
        )

    def commands(self, spec: Spec) -> list[LaunchCommand]:
        """The exact argv and environment each of the resource's processes is started with,
        as built from the spec and the host's last facts (nothing is started)."""
        kind = kind_of(spec)
        if not isinstance(kind, HasCommand):
            raise ActionRefused(f"a {kind.name} is not started from a command")
        return kind.commands(spec, self.hosts)

    def host_key(self, address: str, port: int) -> tuple[str, str]:
        """(key type, fingerprint) of a host not yet trusted, for the operator to compare."""
        return host_key_fingerprint(address, port)

    def make_demo_model(self, host: str, model_dir: str) -> bool:
        """The tiny model `llmops demo` serves, made on the host once; True when made now."""
        return make_tiny_model(self.hosts.transport(host), model_dir)

    # -- long work: its progress records and report (any kind that keeps them) ------------
    def progress(self, spec: Spec) -> list[dict[str, Any]]:
        """The resource's progress records, oldest first (a chart, a progress bar, an ETA)."""
        kind = kind_of(spec)
        if not isinstance(kind, HasProgress):
            raise ActionRefused(f"a {kind.name} keeps no progress")
        return kind.progress_points(spec, self.hosts)

    def report(self, spec: Spec) -> dict[str, Any] | None:
        """The report the resource's kind keeps for it (None: none yet)."""
        kind = kind_of(spec)
        if not isinstance(kind, HasReport):
            raise ActionRefused(f"a {kind.name} keeps no report")
        return kind.report(spec, self.hosts)

    # -- adapters: which content a deploy names, and the versions a name has had ------------
    def adapter_sha(self, run: str | None, path: str | None, host: str | None) -> str:
        """The sha256 of a run's final adapter (its current training config's, from its
        result.json on the run's host; refused while the run is not done) or of the adapter
        folder at `path` on `host`: what `adapter deploy` writes into the spec."""
        if (run is None) == (path is None):
            raise SpecError("run", "give the adapter's source: a run or a path (one of them)")
        if run is not None:
            spec = self.lab.read_spec("run", run)
            if not isinstance(spec, RunSpec):
                raise SpecError("run", f"there is no run named {run}", "see `llmops run list`")
            return run_sha(self.hosts, spec)
        assert path is not None
        if host is None:
            raise SpecError("host", f"{path}: which host is it on?", "give --host (or --server)")
        if self.lab.read_spec("host", host) is None:
            raise SpecError("host", f"there is no host named {host}", "see `llmops host list`")
        return path_sha(self.hosts, host, path)

    def adapter_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version adapters/NAME.toml has named in the lab's git, newest first: sha256,
        short sha, server, source, commit, when (unix time) and the commit's summary; a commit
        that removed it has sha256 None."""
        rel = spec_path("adapter", name)
        versions: list[dict[str, Any]] = []
        for commit in self.lab.repo.iter_commits(paths=rel):
            try:
                spec = self.lab.read_spec("adapter", name, commit.hexsha)
            except LabFileError:
                continue  # a hand edit that never parsed: no version
            if not isinstance(spec, AdapterSpec):
                spec = None
            sha = spec.sha256 if spec else None
            versions.append({
                "sha256": sha,
                "short": sha[:12] if sha else None,
                "server": spec.server if spec else None,
                "source": (f"run {spec.run}" if spec.run else spec.path) if spec else None,
                "commit": commit.hexsha,
                "when": commit.committed_date,
                "summary": commit.summary,
            })
        return versions

    # -- indexes: the backup a destructive change names, queries, an ingest now -------------
    def index_backup_for(self, spec: IndexSpec) -> IndexSpec:
        """The spec to commit for an index change: when it would lose the collection's objects
        (its data key differs from the lab's spec), a backup of what the collection holds is
        taken now and its id written into the spec (`backup_id`), so the commit names it; the
        spec as given otherwise. Refusals (admission) come first, so nothing is backed up for
        a change that would be refused."""
        from llmops.ops.kinds.index.apply import backup_before

        current = self.lab.read_spec("index", spec.name)
        self.admit([Change("index", spec.name, spec)])  # type: ignore[attr-defined]
        return backup_before(spec, current if isinstance(current, IndexSpec) else None,
                             self.hosts)

    def index_query(self, spec: IndexSpec, text: str, k: int = 5,
                    alpha: float | None = None) -> list[dict[str, Any]]:
        """Hybrid search on an index: top-k chunks with score, source, chunk and text."""
        from dataclasses import asdict

        from llmops.ops.kinds.index.query import hybrid

        return [asdict(hit) for hit in hybrid(spec, self.hosts, text, k, alpha)]

    def index_ingest(self, name: str) -> ActionRecord:
        """Ingest the index's source now (documents changed on the host): its reconcile with
        the spec unchanged, journalled as an operation with the checklist."""
        from llmops.ops.kinds.index.apply import reconcile_now

        with self.lab.lock.hold(current_command(), wait=self.lock_wait):
            spec = self.lab.read_spec("index", name, self.lab.head())
            if spec is None:
                raise SpecError("name", f"there is no index named {name}",
                                "see `llmops index list`")
            return self._operation(
                "ingest", Change("index", name, spec), f"index {name} ingested",
                lambda progress: reconcile_now(index_spec(spec), self.hosts, progress),
            )

    def index_eval(self, spec: IndexSpec, queries: str, k: int | None = None
                   ) -> dict[str, Any]:
        """recall@k and MRR of the index's hybrid search on queries (.jsonl text: query and
        expected documents), kept per lab commit in the index's record on its host; returned
        with every earlier result, newest first (`history`), for a side-by-side look."""
        from llmops.ops.kinds.index.evaluate import (
            eval_history,
            parse_queries,
            record_eval,
            run_eval,
        )

        try:
            parsed = parse_queries(queries)
        except ValueError as exc:
            raise SpecError("queries", str(exc),
                            'one JSON object a line: {"query": ..., "expected": [...]}') from exc
        result = run_eval(spec, self.hosts, parsed, k)
        entry = record_eval(spec, self.hosts, result, self.lab.head(), "eval")
        forget = getattr(kind_of(spec), "evals_changed", None)
        if forget is not None:  # the console's recall chart reads the new one at its next poll
            forget(spec.name)
        return {**result, "commit": entry["commit"], "retrieval_key": entry["retrieval_key"],
                "history": eval_history(spec, self.hosts)}


def index_spec(spec: Spec) -> IndexSpec:
    assert isinstance(spec, IndexSpec), spec
    return spec
