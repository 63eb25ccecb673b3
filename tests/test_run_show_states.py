"""`llmops run show` labels the spec's `state` as what is desired and the host's as what is
observed, side by side, with what the pair means: a finished run stays `running` in its spec,
which printed as `state: running` above `observed: done` read as a contradiction (user4's
walk). The real CLI on a lab with host `local` and a hand-edited run (no trainer starts)."""

from __future__ import annotations

import sys
from pathlib import Path

from labtools import llmops, llmops_json

from llmops.console.presenters.run_words import state_reading
from llmops.rollback.lab import Lab


def test_desired_and_observed_are_labelled_side_by_side(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "hello"}\n')
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "w"), "--data-dirs", str(data))
    (lab / "runs").mkdir()
    (lab / "runs" / "r0.toml").write_text(
        f'host = "local"\nbase = "/models/tiny"\ndataset = "{data}/train.jsonl"\n'
        'state = "running"\n')
    opened = Lab(lab)
    try:
        opened.commit("hand edit: run r0", ["runs/r0.toml"])
    finally:
        opened.close()
    lines = [line.strip() for line in llmops(lab, "run", "show", "r0").stdout.splitlines()]
    assert not [line for line in lines if line.startswith("state:")], lines  # unlabelled
    desired = lines.index("desired state: running (the spec)")
    assert lines[desired + 1] == "observed state: absent (on the host, now)"
    assert lines[desired + 2] == "nothing of it on the host yet: `llmops plan` shows it"
    shown = llmops_json(lab, "run", "show", "r0")  # scripts: unchanged
    assert shown["spec"]["state"] == "running" and shown["state"] == "absent"


def test_each_pair_reads_as_an_operator_reads_it() -> None:
    done = state_reading("r1", "running", "done")
    assert done[:2] == [("desired state", "running (the spec)"),
                        ("observed state", "done (on the host, now)")]
    assert "finished" in done[2][1] and "nothing left to do" in done[2][1]
    assert "`llmops run logs r1`" in state_reading("r1", "running", "failed")[2][1]
    assert state_reading("r1", "running", "training")[2][1] == "as desired"
    assert "`llmops run resume r1`" in state_reading("r1", "stopped", "stopped")[2][1]
    odd = state_reading("r1", "stopped", "unreachable: timed out")[2][1]
    assert odd.startswith("observed unreachable") and "`llmops plan`" in odd
