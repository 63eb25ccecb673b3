"""The run kind for real: the engine (git + SQLite) drives the real trainer (transformers +
peft on the tiny model) on host `local` and on an SSH namespace host. A run trains to done,
a change of learning rate is rolled back without retraining, a rollback of the start stops
it and keeps its outputs, a SIGKILLed trainer is shown interrupted and resumed, refused
inputs write nothing, and every check of the checklist fails on a real fault."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from finetune_fixtures import text_rows, tiny_model_dir, write_rows
from labtools import local_spec
from sshhosts import SshHost

from llmops.ops import procs
from llmops.ops.kinds.base import Check, Sample, SpecError
from llmops.ops.kinds.run import RunKind, RunSpec
from llmops.ops.kinds.run import checks as run_checks
from llmops.ops.kinds.run.apply import observe
from llmops.ops.kinds.run.data import data_dirs
from llmops.rollback.engine import Change, Engine
from llmops.rollback.lab import Lab
from llmops.rollback.records import ActionRecord

KIND = RunKind()
QUICK = {"max_steps": 30, "save_steps": 10, "eval_steps": 10, "logging_steps": 5,
         "eval_split": 0.1, "batch_size": 4, "max_seq_len": 64, "lr": 0.01, "seed": 1,
         "dropout": 0.0}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A lab with host `local` whose data dirs are the test's own folders."""
    eng = Engine(Lab(tmp_path / "lab"), lock_wait=2.0)
    dirs = [str(tmp_path / "data" / "training"), str(tmp_path / "data" / "validation")]
    added = eng.act([Change("host", "local", local_spec(tmp_path, data_dirs=dirs))], "add")
    assert added.status == "succeeded", added
    yield eng
    for spec in eng.lab.specs().values():
        if not isinstance(spec, RunSpec):
            continue
        for proc in (spec.proc_name(), f"{spec.proc_name()}.screen"):
            procs.stop(eng.hosts.transport(spec.host), proc, grace=5)
    eng.close()
    eng.lab.close()


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "data" / "training" / "rows.jsonl", text_rows(40))


def run_spec(rows: Path, name: str = "t1", **changes: Any) -> RunSpec:
    fields = {"host": "local", "base": str(tiny_model_dir()), "dataset": str(rows), **QUICK}
    return RunSpec(name=name, **{**fields, **changes})


def cfg_folder(engine: Engine, spec: RunSpec) -> Path:
    workdir = (engine.hosts.facts(spec.host) or {})["workdir"]
    return Path(workdir) / "runs" / spec.name / spec.cfg_hash()


def events(folder: Path) -> list[dict[str, Any]]:
    path = folder / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().split("\n")[:-1] if x.strip()]


def wait_status(engine: Engine, spec: RunSpec, want: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = engine.status(spec)
        if state == want:
            return
        if want == "done" and state in ("failed", "interrupted"):
            break
        time.sleep(0.5)
    log = "\n".join(engine.logs(spec, 20))
    raise AssertionError(f"{spec.name} is {state}, not {want}:\n{log}")


def act(engine: Engine, spec: RunSpec | None, name: str = "t1") -> ActionRecord:
    record = engine.act([Change("run", name, spec)], f"run {name}")
    assert record.status == "succeeded", (record.error, failed(record.checks))
    assert record.checks_passed, failed(record.checks)
    return record


def failed(checks: list[Any]) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in checks if not c.ok]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_train_change_rollback_and_release(engine: Engine, rows: Path) -> None:
    """Start -> done (checklist ok); lr change -> new cfg trains; its rollback stops it and
    brings the done cfg back without retraining; rollback of that rollback resumes the new cfg
    from the checkpoint its stop saved; rollback of the start stops it, keeps the outputs."""
    spec = run_spec(rows)
    started = act(engine, spec)
    assert [s.verb for s in started.steps] == [
        "check-base", "inspect", "screen", "write-config", "start", "wait-progress"]
    assert {c.name for c in started.checks} >= {"dataset readable",
                                                "base loads + trainer dry-run"}
    wait_status(engine, spec, "done")
    old = cfg_folder(engine, spec)
    result = json.loads((old / "result.json").read_text())
    assert result["steps"] == 30
    checks = KIND.validate(spec, engine.hosts)
    assert [c.name for c in checks] == ["dataset readable", "base loads + trainer dry-run",
                                        "adapter sha"]
    assert all(c.ok for c in checks), failed(checks)
    sample = KIND.sampler(spec, engine.hosts).sample()
    assert sample is not None and sample["progress"] == 1.0 and sample["step"] == 30
    assert sample["loss"] is not None and sample["eval_loss"] is not None
    row = KIND.summary(spec, "done", Sample("run/t1", time.time(), values=sample))
    assert row["adapter"] == result["sha256"][:12] and row["cfg"] == old.name
    assert [p["event"] for p in KIND.progress_points(spec, engine.hosts)][-1] == "done"
    assert (KIND.report(spec, engine.hosts) or {})["rows_in"] == 40
    (command,) = KIND.commands(spec, engine.hosts)
    assert command.argv[-2:] == ["train", str(old / "config.json")]
    assert command.env["HF_HUB_OFFLINE"] == "1"

    faster = spec.model_copy(update={"lr": 0.02, "max_steps": 400})
    changed = act(engine, faster)
    new = cfg_folder(engine, faster)
    assert new != old and engine.status(faster) == "training"
    trained_before = len([e for e in events(old) if e["event"] == "start"])

    back = engine.rollback(changed.id)
    assert back.status == "succeeded" and back.checks_passed, failed(back.checks)
    assert [s.verb for s in back.steps] == ["stop", "select"]
    assert by_name(back.checks)["adapter sha"].ok
    assert len([e for e in events(old) if e["event"] == "start"]) == trained_before
    assert json.loads((old / "result.json").read_text()) == result  # nothing retrained
    assert events(new)[-1]["event"] == "stopped"  # graceful: checkpoint saved, then out
    stopped_at = events(new)[-1]["step"]  # wherever the trainer was when the stop came
    assert engine.status(spec) == "done"
    print(f"\nrollback of the lr change: {back.seconds:.2f}s: "
          + ", ".join(f"{s.verb} {s.seconds:.2f}s" for s in back.steps) + "; "
          + ", ".join(f"{c.name} {c.seconds:.2f}s" for c in back.checks))

    again = engine.rollback(back.id)  # the new cfg again: resumed from its checkpoint
    assert again.status == "succeeded" and again.checks_passed, failed(again.checks)
    start = next(s for s in again.steps if s.verb == "start")
    assert "resume from checkpoint-" in start.detail
    resumed = [e for e in events(new) if e["event"] == "start"][-1]
    assert resumed["resumed_from"] == stopped_at >= 1  # from the checkpoint its stop saved

    gone = engine.rollback(started.id)  # the start itself: stop, release, keep everything
    assert gone.status == "succeeded" and gone.checks_passed, failed(gone.checks)
    assert [s.verb for s in gone.steps] == ["stop", "release"]
    assert {c.name for c in gone.checks} == {"no process", "outputs kept"}
    assert not procs.status(engine.hosts.transport("local"), spec.proc_name()).running
    for folder in (old, new):
        assert (folder / "released").exists()
        assert (folder / "progress.jsonl").exists() and (folder / "data/train.jsonl").exists()
    assert (old / "adapter" / "adapter_config.json").exists()
    print(f"rollback of the start: {gone.seconds:.2f}s")


def test_sigkill_shows_interrupted_and_the_next_reconcile_resumes(
    engine: Engine, rows: Path
) -> None:
    spec = run_spec(rows, max_steps=60, save_steps=10, eval_split=0.0)
    act(engine, spec)
    folder = cfg_folder(engine, spec)
    deadline = time.monotonic() + 120
    while not any(e["event"] == "checkpoint" for e in events(folder)):
        assert time.monotonic() < deadline, events(folder)[-3:]
        time.sleep(0.1)
    info = procs.status(engine.hosts.transport("local"), spec.proc_name())
    assert info.pid is not None
    os.kill(info.pid, signal.SIGKILL)  # the trainer alone, as the OOM killer would
    wait_status(engine, spec, "interrupted", timeout=30)
    training = by_name(KIND.validate(spec, engine.hosts))["training"]
    assert not training.ok and "not training" in training.detail

    steps = engine.planned("run", spec, spec)  # `llmops plan` shows what the reconcile does
    start = next(s for s in steps if s.verb == "start")
    assert "resume from checkpoint-" in start.detail and "interrupted" in start.detail
    resumed = engine.restart("run", spec.name)  # the reconcile, journalled
    assert resumed.status == "succeeded" and resumed.checks_passed, failed(resumed.checks)
    wait_status(engine, spec, "done")
    starts = [e for e in events(folder) if e["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from"] >= 10
    assert json.loads((folder / "result.json").read_text())["steps"] == 60


def test_refused_inputs_write_nothing(engine: Engine, rows: Path, tmp_path: Path) -> None:
    outside = write_rows(tmp_path / "elsewhere" / "rows.jsonl", text_rows(10))
    link = rows.parent / "link.jsonl"
    link.symlink_to(outside)
    body = write_rows(rows.parent / "body.jsonl", [{"body": "no text field"}] * 5)
    cases = [
        (run_spec(outside), "dataset", "outside-data-dirs"),
        (run_spec(link), "dataset", "symlink-escape"),
        (run_spec(body), "dataset", "missing-field"),
        (run_spec(rows, qlora=True), "qlora", "needs a CUDA GPU"),
        (run_spec(rows, validation=str(outside)), "validation", "outside-data-dirs"),
    ]
    head, actions = engine.lab.head(), engine.lab.journal.db.execute_returning_dicts(
        "select count(*) as n from events")
    for spec, field, words in cases:
        with pytest.raises(SpecError) as refused:
            engine.act([Change("run", spec.name, spec)], "refused")
        assert refused.value.field == field, refused.value
        assert words in str(refused.value)
        if words != "needs a CUDA GPU":
            assert str(tmp_path / "data" / "training") in str(refused.value)  # the dirs named
    assert engine.lab.head() == head
    assert engine.lab.journal.db.execute_returning_dicts(
        "select count(*) as n from events") == actions
    workdir = Path((engine.hosts.facts("local") or {})["workdir"])
    assert not (workdir / "runs").exists()


def test_each_check_fails_on_a_real_fault(engine: Engine, rows: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir(), base)
    spec = run_spec(rows, base=str(base), max_steps=10, eval_split=0.0)
    act(engine, spec)
    wait_status(engine, spec, "done")
    folder = cfg_folder(engine, spec)

    t = engine.hosts.transport("local")
    facts = engine.hosts.facts("local") or {}
    dirs = data_dirs(engine.hosts, "local")

    def check(name: str, of: RunSpec = spec) -> Check:
        """One item of the checklist, as the checklist runs it (not the whole list: each
        dry run loads the base)."""
        observed = observe(of, engine.hosts, hash_data=False)
        fn = {
            "dataset readable": lambda: run_checks.check_dataset(t, of, dirs),
            "base loads + trainer dry-run": lambda: run_checks.check_dry_run(
                t, of, facts, observed),
            "adapter sha": lambda: run_checks.check_adapter(t, of, facts, observed),
            "no process": lambda: run_checks.check_no_process(of, observed),
        }[name]
        ok, detail = fn()
        return Check(name, ok, detail)

    assert all(c.ok for c in KIND.validate(spec, engine.hosts))

    rows.rename(rows.with_suffix(".gone"))
    assert not check("dataset readable").ok
    rows.with_suffix(".gone").rename(rows)

    weights = folder / "adapter" / "adapter_model.safetensors"
    kept = weights.read_bytes()
    weights.write_bytes(kept + b"\0")
    sha = check("adapter sha")
    assert not sha.ok and "vs result.json" in sha.detail
    weights.write_bytes(kept)

    config = (base / "config.json").read_text()
    (base / "config.json").write_text("{")
    dry = check("base loads + trainer dry-run")
    assert not dry.ok and "dry run" in dry.detail
    (base / "config.json").write_text(config)

    impostor = procs.start(t, spec.proc_name(), ["sleep", "60"])
    stopped = spec.model_copy(update={"state": "stopped"})
    assert not check("no process", stopped).ok
    absent = by_name(KIND.validate_absent(spec, engine.hosts))
    assert not absent["no process"].ok
    procs.stop(t, spec.proc_name(), grace=1)
    assert impostor.pid is not None
    assert check("no process", stopped).ok

    act(engine, None)  # released
    assert all(c.ok for c in KIND.validate_absent(spec, engine.hosts))
    shutil.move(folder / "adapter", tmp_path / "adapter-away")
    lost = by_name(KIND.validate_absent(spec, engine.hosts))["outputs kept"]
    assert not lost.ok and "adapter gone" in lost.detail
    shutil.move(tmp_path / "adapter-away", folder / "adapter")
    (folder / "released").unlink()
    assert not by_name(KIND.validate_absent(spec, engine.hosts))["outputs kept"].ok


def test_a_run_trains_on_an_ssh_host(engine: Engine, ssh_host: SshHost) -> None:
    """Over SSH (paramiko, SFTP, procctl in the namespace), data under the host's home."""
    home = Path(os.path.expanduser("~"))  # the namespace host logs in as this user, same files
    top = f"llmops-data-{uuid.uuid4().hex[:8]}"
    dataset = write_rows(home / top / "training" / "rows.jsonl", text_rows(40))
    try:
        host = ssh_host.spec(data_dirs=[f"~/{top}/training"])
        added = engine.act([Change("host", host.name, host)], "add ssh host",
                           trust={host.name: ssh_host.host_pub_fingerprint})
        assert added.status == "succeeded", added.error
        spec = RunSpec(name="remote", host=host.name, base=str(tiny_model_dir()),
                       dataset=f"~/{top}/training/rows.jsonl", **{**QUICK, "max_steps": 10})
        act(engine, spec, "remote")
        wait_status(engine, spec, "done")
        assert KIND.report(spec, engine.hosts)["rows_in"] == 40
        points = KIND.progress_points(spec, engine.hosts)
        assert [p["event"] for p in points][-1] == "done"
        assert engine.status(spec) == "done"
        act(engine, None, "remote")
    finally:
        shutil.rmtree(home / top, ignore_errors=True)
        assert not dataset.exists()
