"""Load-test results stored per server and spec commit, compared before/after (issue 12).

A bench changes nothing on a host or in git: it is not an action, but its result is kept in
`benches` in lab.db (a row per bench: server, the commit that last changed its spec, the
spec's sha, when, the parameters, every figure, the verdict per target, the cost), so a bench
before and after a change — or a rollback — can be read side by side. The Engine's door for the
CLI (`llmops server bench`, `benches`) and the console's Bench screen."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlite_utils

from llmops.ops.kinds.server.benchparams import BenchParams
from llmops.ops.kinds.server.loadtest import BenchRefused, BenchReport, run_bench
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.changes import ActionRefused
from llmops.rollback.lab import spec_path

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool
    from llmops.ops.kinds.server.bench import Progress
    from llmops.rollback.lab import Lab

__all__ = ["BenchParams", "BenchReport", "BenchStore", "Benches"]

JSON_FIELDS = ("params", "figures", "verdicts", "cost", "errors")


class BenchStore:
    """The `benches` table: append, newest first, per server."""

    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock | None = None) -> None:
        self.db, self.lock = db, lock or threading.RLock()
        with self.lock:
            if "benches" not in self.db.table_names():
                self.db.table("benches").create(
                    {"id": int, "server": str, "spec_commit": str, "spec_sha": str, "at": float,
                     "verdict": str, "params": str, "figures": str, "verdicts": str,
                     "cost": str, "errors": str}, pk="id")
                self.db.table("benches").create_index(["server", "at"])

    def add(self, report: BenchReport, spec_commit: str, spec_sha: str) -> dict[str, Any]:
        row = {"server": report.server, "spec_commit": spec_commit, "spec_sha": spec_sha,
               "at": time.time(), "verdict": report.verdict,
               **{k: json.dumps(v) for k, v in report.to_dict().items() if k in JSON_FIELDS}}
        with self.lock, self.db.conn:
            table = self.db.table("benches")
            table.insert(row)
            row["id"] = table.last_pk
        return decode(row)

    def recent(self, server: str, limit: int = 20) -> list[dict[str, Any]]:
        """The server's benches, newest first."""
        with self.lock:
            rows = self.db.execute(
                "select * from benches where server = ? order by at desc, id desc limit ?",
                [server, limit]).fetchall()
            cols = [c.name for c in self.db.table("benches").columns]
        return [decode(dict(zip(cols, r, strict=True))) for r in rows]


def decode(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in ("params", "figures", "verdicts", "cost"):
        if isinstance(out.get(k), str):
            out[k] = json.loads(out[k])
    out["errors"] = json.loads(out["errors"]) if isinstance(out.get("errors"), str) else []
    return out


def pair(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(before, after): the newest bench and the newest one of another spec version (another
    commit that changed the spec: a change or a rollback), else the one before it."""
    if not rows:
        return None, None
    after = rows[0]
    other = next((r for r in rows[1:] if r["spec_commit"] != after["spec_commit"]), None)
    return other or (rows[1] if len(rows) > 1 else None), after


class Benches:
    """Bench results: run, store per (server, commit), compare (a mixin of the Engine)."""

    lab: Lab
    hosts: HostPool

    def bench_store(self) -> BenchStore:
        return BenchStore(self.lab.journal.db, self.lab.journal.lock)

    def run_bench(self, name: str, params: BenchParams, *, store: bool = True,
                  progress: Progress | None = None) -> dict[str, Any]:
        """Load-test server `name` as committed; stored unless `store` is off (read-only).
        ActionRefused: no such server, it does not answer, or the lengths do not fit."""
        spec = self.lab.read_spec("server", name)
        if not isinstance(spec, ServerSpec):
            raise ActionRefused(f"name: there is no server named {name} (see `llmops server "
                                "list`)")
        params.rows()  # a bad dataset is refused before a request is sent
        try:
            report = run_bench(spec, self.hosts, params, progress)
        except BenchRefused as exc:
            raise ActionRefused(str(exc)) from exc
        commit, sha = self.spec_version(name)
        if not store:
            return {**decode({**report.to_dict(), "errors": report.error_samples}),
                    "server": name, "spec_commit": commit, "spec_sha": sha, "at": time.time(),
                    "id": None}
        return self.bench_store().add(report, commit, sha)

    def spec_version(self, name: str) -> tuple[str, str]:
        """(the last commit that changed the server's spec file, the sha256 of its text)."""
        rel = spec_path("server", name)
        found = next(iter(self.lab.repo.iter_commits(paths=rel, max_count=1)), None)
        commit = found.hexsha if found else self.lab.head()
        text = self.lab.text_at(rel, commit) or ""
        return (commit,
                hashlib.sha256(text.encode()).hexdigest())

    def benches(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The server's stored benches, newest first."""
        return self.bench_store().recent(name, limit)

    def last_bench(self, name: str) -> dict[str, Any] | None:
        rows = self.benches(name, 1)
        return rows[0] if rows else None

    def bench_pair(self, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(before, after) for a side-by-side: see `pair`."""
        return pair(self.benches(name, 200))
