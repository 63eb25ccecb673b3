"""The console's one door (rollback/operate.py) without vLLM: a restart journalled with who
and when (and nothing to roll back), `llmops rollback --last KIND/NAME` through the real CLI,
probes that record facts only when asked, `server list` read from the per-kind summary with
telemetry stored by ref, and the import contract that keeps the console off ops."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import llmops, llmops_json, local_spec

from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import ActionRefused, Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.operate import newest_undoable
from llmops.rollback.records import ActionRecord
from llmops.rollback.telemetry import Sample, TelemetryStore

ROOT = Path(__file__).resolve().parents[1]


def lab_with_server(tmp_path: Path) -> Path:
    """Host `local` (an action) and server `ghost` (a hand edit, never started) whose model
    folder does not exist, so anything that would start it fails at once."""
    path = tmp_path / "lab"
    llmops(path, "host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(tmp_path / "w"))
    lab = Lab(path)
    spec = ServerSpec(name="ghost", host="local", model=str(tmp_path / "no-model"), port=18391)
    lab.commit("hand edit: server ghost", [lab.write_spec("server", "ghost", spec)])
    lab.close()
    return path


def test_restart_is_journalled_with_who_and_when(tmp_path: Path) -> None:
    lab = lab_with_server(tmp_path)
    done = llmops(lab, "server", "restart", "ghost", "--json", check=1)
    action = json.loads(done.stdout)["action"]
    assert action["kind"] == "restart" and action["status"] == "failed"
    assert action["who"].startswith(f"{getpass.getuser()}@") and action["started_at"]
    assert action["summary"] == "server ghost restarted"
    assert action["refs"] == [["server", "ghost"]]
    assert [(s["verb"], s["ok"]) for s in action["steps"]] == [("restart", False)]
    assert "not a model folder" in action["error"]
    assert action["before_commit"] == action["commit"]  # no desired state changed
    history = llmops_json(lab, "history")
    assert history[-1]["id"] == action["id"] and history[-1]["kind"] == "restart"
    assert llmops_json(lab, "history", "--verify")["ok"]  # chained and anchored like an action
    refused = llmops_json(lab, "rollback", str(action["id"]), check=2)
    assert "nothing to roll back" in refused["error"]
    # ...and `rollback --last` passes over it, to the last action on the resource (none here)
    none = llmops_json(lab, "rollback", "--last", "server/ghost", check=2)
    assert "no action on server/ghost to roll back" in none["error"]


def test_restart_refusals_write_nothing(tmp_path: Path) -> None:
    lab = lab_with_server(tmp_path)
    rows = len(llmops_json(lab, "history"))
    unknown = llmops_json(lab, "server", "restart", "nobody", check=2)
    assert "no server named nobody" in unknown["error"]
    read_only = llmops(lab, "--read-only", "server", "restart", "ghost", check=2)
    assert "read-only" in read_only.stderr
    assert len(llmops_json(lab, "history")) == rows


def test_rollback_last_through_the_cli(tmp_path: Path) -> None:
    """The CLI twin of a row's ctrl+z: the newest action on the resource not rolled back yet;
    after a rollback that is the rollback itself, so a second `--last` puts the change back."""
    lab = tmp_path / "lab"
    add = ["host", "add", "local", "--local", "--python", sys.executable,
           "--workdir", str(tmp_path / "w")]
    llmops_json(lab, *add)
    changed = llmops_json(lab, *add, "--cost-per-hour", "2.5")["action"]
    back = llmops_json(lab, "rollback", "--last", "host/local")
    assert back["ok"] and back["action"]["rollback_of"] == changed["id"]
    assert "cost_per_hour" not in (lab / "hosts/local.toml").read_text()
    again = llmops_json(lab, "rollback", "--last", "host/local")
    assert again["action"]["rollback_of"] == back["action"]["id"]
    assert "cost_per_hour = 2.5" in (lab / "hosts/local.toml").read_text()
    for bad, says in ((["--last", "host"], "is not KIND/NAME"),
                      (["--last", "host/nobody"], "no action on host/nobody"),
                      (["1", "--last", "host/local"], "one of them")):
        assert says in llmops_json(lab, "rollback", *bad, check=2)["error"]


def record(action_id: int, kind: str = "apply", status: str = "succeeded",
           rolled_back_by: int | None = None) -> ActionRecord:
    return ActionRecord(action_id, kind, f"action {action_id}", "me@here", "2026-01-01",
                        status=status, refs=[("server", "s")], rolled_back_by=rolled_back_by)


def test_newest_undoable_passes_over_operations_and_undone_actions() -> None:
    actions = [record(1), record(2, rolled_back_by=3), record(3, "rollback"),
               record(4, "restart"), record(5, status="failed, reverted")]
    found = newest_undoable(actions, ("server", "s"))
    assert found is not None and found.id == 3  # the rollback; the restart changed nothing
    assert newest_undoable(actions[:2], ("server", "s")) is not None
    assert newest_undoable(actions, ("server", "other")) is None


@pytest.fixture
def engine(tmp_path: Path):
    lab = Lab(tmp_path / "lab")
    eng = Engine(lab, lock_wait=0.5)
    eng.act([Change("host", "local", local_spec(tmp_path))], "host local added")
    yield eng
    eng.close()
    lab.close()


def test_probe_records_facts_only_when_asked(engine: Engine, tmp_path: Path) -> None:
    spec = local_spec(tmp_path)
    engine.lab.journal.record_observed("host", "local", None)
    facts = engine.probe(spec, record=False)  # a read-only console or CLI call
    assert facts["python_version"] and engine.lab.journal.observed("host", "local") is None
    engine.probe(spec, record=True)
    observed = engine.lab.journal.observed("host", "local")
    assert observed is not None and observed["python_version"] == facts["python_version"]


def test_restart_of_a_kind_that_cannot_is_refused(engine: Engine) -> None:
    with pytest.raises(ActionRefused, match="cannot be restarted"):
        engine.restart("host", "local")


def test_server_list_reads_the_summary_and_telemetry_by_ref(tmp_path: Path) -> None:
    lab = lab_with_server(tmp_path)
    opened = Lab(lab)
    store = TelemetryStore(opened.journal.db, opened.journal.lock)
    store.add(Sample("server/ghost", 10_000_000_000, values={"generation_tps": 12.5,
                                                            "e2e_p95": 0.25}))
    store.add(Sample("run/ghost", 10_000_000_001, values={"loss": 1.5}))  # another kind's
    opened.close()
    rows = llmops_json(lab, "server", "list")
    assert [(r["name"], r["state"], r["tokens_per_s"], r["e2e_p95_s"]) for r in rows] == [
        ("ghost", "stopped", 12.5, 0.25)]


def test_console_imports_ops_only_for_spec_and_base_types() -> None:
    """The contract in pyproject.toml, run by the real import-linter (as `make lint` does)."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--contract",
                           "console-door"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "The console reaches hosts through rollback" in done.stdout
    assert "1 kept, 0 broken" in done.stdout
