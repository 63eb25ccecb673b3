"""Reverts that could not reach their host: what an action started there may still run.

A revert that fails (the SSH connection dropped mid-action) must not forget what the action
started: git is back to the before-commit, so no desired spec claims it any more. The
resource is recorded here, in `lab.db` beside the journal (a cache keyed by the resource,
like `observed`, so it survives restarts), with the spec it may be running as, until an
action, a rollback or `llmops plan` reaches the host and reconciles it to what git wants.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from llmops.ops.kinds.base import Ref, Spec
from llmops.rollback.journal import Journal, now
from llmops.rollback.kinds import KINDS

PENDING_STATE = "unknown — revert pending"

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_reverts (
    kind TEXT NOT NULL, name TEXT NOT NULL, action_id INTEGER NOT NULL, at TEXT NOT NULL,
    spec TEXT NOT NULL, error TEXT NOT NULL, PRIMARY KEY (kind, name))
"""


@dataclass(frozen=True)
class PendingRevert:
    """One resource whose revert did not finish: `spec` is what may still run on its host."""

    kind: str
    name: str
    spec: Spec
    action_id: int
    error: str
    at: str
    where: str | None = None
    """The host the revert must reach (`revert_host`); None: the kind's own `host_of`."""

    @property
    def ref(self) -> Ref:
        return (self.kind, self.name)

    @property
    def host(self) -> str | None:
        """Where the revert is finished: what is tried only once this host answers."""
        return self.where or KINDS[self.kind].host_of(self.spec)

    def describe(self) -> str:
        """The line an operator reads beside the resource."""
        return (
            f"{PENDING_STATE}: the revert of action {self.action_id} could not finish"
            f" ({self.error}); the next action or `llmops plan` that reaches"
            f" {self.host or 'its host'} finishes it"
        )


Desired = Callable[[str, str], Spec | None]
"""The lab's desired spec of a resource (`Lab.read_spec`), or None."""


def revert_host(spec: Spec, kind: str, desired: Desired | None) -> str | None:
    """The host a revert of this resource must reach. A resource that stands on a server (an
    adapter: its store and its loaded copy are on the server's host) is reverted there, not on
    its own `host_of` (an adapter's source path's host, which a revert never needs); the
    server's desired spec says where it runs. Else, and without a lab, the kind's host_of."""
    server = KINDS[kind].depends_on(spec).get("server")
    if server is not None and desired is not None:
        found = desired(*server)
        if found is not None:
            host = KINDS[server[0]].host_of(found)
            if host:
                return host
    return KINDS[kind].host_of(spec)


class PendingReverts:
    """The `pending_reverts` table of lab.db (not part of the hash chain: the `failed` row of
    the action names the same resources under `pending`). `desired` (the lab's `read_spec`)
    tells where a resource standing on a server must be reverted (`revert_host`)."""

    def __init__(self, journal: Journal, desired: Desired | None = None) -> None:
        self.db, self.lock, self.desired = journal.db, journal.lock, desired
        with self.lock, self.db.conn:
            self.db.conn.execute(SCHEMA)

    def record(self, action_id: int, ref: Ref, spec: Spec, error: str) -> None:
        with self.lock, self.db.conn:
            self.db.conn.execute(
                "insert or replace into pending_reverts values (?, ?, ?, ?, ?, ?)",
                [*ref, action_id, now(), json.dumps(spec.to_toml_dict()), error[:500]],
            )

    def clear(self, ref: Ref) -> None:
        with self.lock, self.db.conn:
            self.db.conn.execute(
                "delete from pending_reverts where kind = ? and name = ?", list(ref)
            )

    def get(self, ref: Ref) -> PendingRevert | None:
        return next((p for p in self.all() if p.ref == ref), None)

    def all(self) -> list[PendingRevert]:
        """Oldest first; a row whose spec no longer validates (the kind changed) is skipped."""
        with self.lock:
            rows = self.db.conn.execute(
                "select kind, name, spec, action_id, error, at from pending_reverts"
                " order by at, kind, name"
            ).fetchall()
        found = []
        for kind, name, spec_json, action_id, error, at in rows:
            if kind not in KINDS:
                continue
            try:
                spec = KINDS[kind].Spec.model_validate({**json.loads(spec_json), "name": name})
            except (ValidationError, ValueError):
                continue
            found.append(PendingRevert(kind, name, spec, int(action_id), error, at,
                                       revert_host(spec, kind, self.desired)))
        return found
