"""The console killed at every step of the engine, for every kind (issue 13, item 1).

For each kind's scenario (tests/faults/scenarios.py) and each engine point it reaches
(rollback/faultpoints.py), the real CLI runs the kind's action with `LLMOPS_FAULT_AT` set and
dies by SIGKILL there. Then, in fresh processes only: the next CLI call marks it
`interrupted`; no journal row is lost or half-written (`history --verify`); the lab's git repo
is consistent (`git fsck`, HEAD readable, working tree clean); `llmops rollback N` returns the
host to the before-state (the kind's checklist passes, the same processes run as before). A
kill before the commit leaves nothing to roll back: recovery already put the files back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faults.scenarios import SCENARIOS, Scenario
from labtools import LLMOPS, llmops

from llmops.ops import procs
from llmops.ops.procs import list_procs
from llmops.rollback.engine import Engine
from llmops.rollback.faultpoints import ENV
from llmops.rollback.kinds import KINDS
from llmops.rollback.lab import Lab

pytestmark = pytest.mark.timeout(900)
SLOW = 600


def test_every_kind_in_the_registry_declares_a_scenario() -> None:
    missing = sorted(set(KINDS) - set(SCENARIOS))
    assert not missing, f"kinds without a kill-at-every-step scenario: {missing}"


def cases() -> list[Any]:
    found = []
    for kind, scenario in SCENARIOS.items():
        marks = [pytest.mark.vllm] if "vllm" in scenario.needs else []
        for point in scenario.points:
            bug = scenario.known_bugs.get(point)
            xfail = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
            found.append(pytest.param(kind, point, False, id=f"{kind}-{point}",
                                      marks=marks + xfail))
        for point in scenario.revert_points:
            found.append(pytest.param(kind, point, True, id=f"{kind}-{point}", marks=marks))
    return found


# -- what a host looks like, before and after ----------------------------------------------------
def host_state(lab: Path, hosts: list[str]) -> dict[str, list[tuple[str, int | None]]]:
    """Every llmops process running on these hosts (name, pid): what a rollback must restore."""
    opened = Lab(lab, create=False)
    engine = Engine(opened)
    try:
        return {
            host: sorted((p.name, p.pid) for p in list_procs(engine.hosts.transport(host))
                         if p.running)
            for host in hosts
        }
    finally:
        engine.close()
        opened.close()


def git(lab: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(lab), *args], capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def assert_git_consistent(lab: Path) -> None:
    git(lab, "fsck", "--no-progress", "--no-dangling")
    git(lab, "rev-parse", "--verify", "HEAD^{commit}")
    assert git(lab, "status", "--porcelain") == "", git(lab, "status")


def run_killed(lab: Path, args: list[str], point: str, env: dict[str, str]
               ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*LLMOPS, "--lab", str(lab), *args, "--json"], capture_output=True, text=True,
        timeout=SLOW, env={**os.environ, **env, ENV: point},
    )
    assert done.returncode == -signal.SIGKILL, (
        f"not killed at {point}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


# -- one lab per kind, set up once ---------------------------------------------------------------
class Prepared:
    def __init__(self, scenario: Scenario, root: Path, request: pytest.FixtureRequest) -> None:
        self.scenario = scenario
        self.action = scenario.setup(root, request)
        self.lab = self.action.lab
        with opened(self.lab) as lab:
            self.hosts = sorted(n for k, n in lab.specs() if k == "host")


_prepared: dict[str, Prepared] = {}


@pytest.fixture(scope="module")
def prepared() -> Iterator[dict[str, Prepared]]:
    yield _prepared
    for ready in _prepared.values():  # the scenarios end as they began; stop what a bug left
        with opened(ready.lab) as lab:
            engine = Engine(lab)
            before = {"emb"}  # the shared embedding server is the index tests' own
            for host in ready.hosts:
                transport = engine.hosts.transport(host)
                for proc in list_procs(transport):
                    if proc.running and proc.name not in before:
                        procs.stop(transport, proc.name, grace=5)
            engine.close()
    _prepared.clear()


def ready_for(kind: str, prepared: dict[str, Prepared], request: pytest.FixtureRequest
              ) -> Prepared:
    if kind not in prepared:
        root = request.getfixturevalue("tmp_path_factory").mktemp(f"fault-{kind}")
        prepared[kind] = Prepared(SCENARIOS[kind], root, request)
    return prepared[kind]


@pytest.mark.parametrize(("kind", "point", "failing"), cases())
def test_killed_at_every_step(
    kind: str, point: str, failing: bool, prepared: dict[str, Prepared],
    request: pytest.FixtureRequest,
) -> None:
    ready = ready_for(kind, prepared, request)
    lab, env = ready.lab, ready.action.env
    args = ready.action.failing if failing else ready.action.args
    assert args is not None
    name = args[2]
    before_state = host_state(lab, ready.hosts)
    with opened(lab) as now:
        action_id = now.next_action_id()

    run_killed(lab, args, point, env)

    # a fresh process: the rollback call recovers it first (so would any command that may
    # act), says so, and then rolls it back
    back = llmops(lab, "rollback", str(action_id), "--json", check=None, timeout=SLOW, env=env)
    assert f"action {action_id} was interrupted" in back.stderr, back.stderr
    answer = json.loads(back.stdout)
    with opened(lab) as now:
        record = now.journal.action(action_id)
        assert record is not None and record.status == "interrupted", record
        assert "died mid-action" in (record.error or "")
    if answer["ok"]:
        checks = answer["action"]["checks"]
        assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
        assert answer["action"]["rollback_of"] == action_id
    else:  # killed before its commit (or its revert committed): nothing left to roll back
        assert back.returncode == 2 and "nothing to roll back" in answer.get("error", ""), answer
    with opened(lab) as now:
        assert now.verify() == [], "journal rows lost or half-written"
        assert now.read_spec(kind, name) is None
        assert now.journal.action(action_id).status == "interrupted"  # type: ignore[union-attr]
    assert_git_consistent(lab)
    assert host_state(lab, ready.hosts) == before_state


@contextmanager
def opened(lab: Path) -> Iterator[Lab]:
    found = Lab(lab, create=False)
    try:
        yield found
    finally:
        found.close()
