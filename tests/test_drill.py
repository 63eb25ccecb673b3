"""Rollback readiness and drills (issue 13 item 8), on real parts: this machine as host
`local`, the session's CPU vLLM server (`shared_server`: a drill changes a target, which does
not restart vLLM, and puts it back), real files for the blockers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import git_log, llmops, llmops_json, local_host_lab
from sharedserver import SharedServer

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.transport import LocalTransport
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab


@pytest.fixture(scope="module")
def local_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return local_host_lab(tmp_path_factory.mktemp("drill"))


def test_drill_of_a_host(local_lab: Path) -> None:
    lab = local_lab
    spec_before = llmops_json(lab, "host", "show", "local")["spec"]
    ready = llmops_json(lab, "drill", "host/local", "--check")
    assert ready["ok"] and ready["readiness"]["blockers"] == []
    log = git_log(lab)
    report = llmops_json(lab, "drill", "host/local")
    assert report["ok"], report
    assert report["how"].startswith("no-op change of cost_per_hour")
    assert report["rollback_seconds"] > 0 and report["total_seconds"] >= report[
        "rollback_seconds"]
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "reachable": True, "command start": True, "probe matches": True}
    print(f"host drill: rollback {report['rollback_seconds']} s, "
          f"{report['total_seconds']} s in all")
    # two journalled actions: the change and its rollback, and the spec is as before
    assert len(git_log(lab)) == len(log) + 2
    change = llmops_json(lab, "history", str(report["change_action"]))
    assert change["rolled_back_by"] == report["rollback_action"]
    assert llmops_json(lab, "host", "show", "local")["spec"] == spec_before
    # the expected time is now the p50 of the journal's host rollbacks
    again = llmops_json(lab, "drill", "host/local", "--check")
    assert again["readiness"]["samples"] >= 1
    assert again["readiness"]["expected_seconds"] == pytest.approx(
        report["rollback_seconds"]) or again["readiness"]["samples"] > 1
    text = llmops(lab, "drill", "host/local", "--check").stdout
    assert "rollback ready" in text and "p50 of" in text


def test_drill_refusals(local_lab: Path) -> None:
    log = git_log(local_lab)
    done = llmops(local_lab, "drill", "host/nowhere", check=2)
    assert "there is no host named nowhere" in done.stderr
    done = llmops(local_lab, "drill", "nonsense", check=2)
    assert "is not KIND/NAME" in done.stderr
    done = llmops(local_lab, "--read-only", "drill", "host/local", check=2)
    assert "read-only" in done.stderr
    assert git_log(local_lab) == log


@pytest.fixture
def engine(local_lab: Path) -> Iterator[Engine]:
    lab = Lab(local_lab, create=False)
    eng = Engine(lab)
    yield eng
    eng.close()
    lab.close()


def test_readiness_blockers_name_what_is_missing(engine: Engine, tmp_path: Path) -> None:
    """Checked on the host itself: a path model's folder, a hub model's cached snapshot, an
    index's named backup."""
    model = tmp_path / "model"
    gone = ServerSpec(name="s", host="local", model=str(model))
    said = engine.readiness("server", "s", gone).blockers
    assert said == [f"{model} is no longer a model folder on local"]
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert engine.readiness("server", "s", gone).blockers == []
    hub = ServerSpec(name="s", host="local", model="llmops-test/never-cached-model")
    said = engine.readiness("server", "s", hub).blockers
    assert said == ["the weights of llmops-test/never-cached-model are not in local's HF cache: "
                    "going back would download them"]
    backups = tmp_path / "backups"
    index = IndexSpec(name="i", host="local", collection="Docs", embed_server="e",
                      launch="binary", binary="/opt/w/weaviate", data_dir=str(tmp_path / "d"),
                      backup_dir=str(backups), backup_id="before-7")
    said = engine.readiness("index", "i", index).blockers
    assert said == [f"backup before-7 is not in {backups} on local"]
    (backups / "before-7").mkdir(parents=True)
    assert engine.readiness("index", "i", index).blockers == []


def test_drill_of_a_server_does_not_restart_it(shared_server: SharedServer) -> None:
    lab = shared_server.lab
    host = HostSpec(name="local", local=True, python=sys.executable,
                    workdir=str(lab.parent / "work"))
    before = procs.status(LocalTransport(host), shared_server.name)
    assert before.running
    report = llmops_json(lab, "drill", f"server/{shared_server.name}")
    assert report["ok"], report
    assert report["how"].startswith("no-op change of target_ttft_p95_ms")
    checks = {c["name"]: c["ok"] for c in report["checks"]}
    assert checks and all(checks.values()), checks
    assert "health" in " ".join(checks), checks
    print(f"server drill: rollback {report['rollback_seconds']} s, {report['total_seconds']} s "
          f"in all, checks {sorted(checks)}")
    after = procs.status(LocalTransport(host), shared_server.name)
    assert (after.pid, after.started_at) == (before.pid, before.started_at)
