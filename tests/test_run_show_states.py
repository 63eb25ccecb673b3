"""`llmops run show` labels the spec's `state` as what is desired and the host's as what is
observed, side by side, with what the pair means: a finished run stays `running` in its spec,
which printed as `state: running` above `observed: done` read as a contradiction (user4's
walk). The real CLI on a lab with host `local` and a hand-edited run (no trainer starts)."""

from __future__ import annotations

from pathlib import Path

from labtools import hand_run_lab, llmops, llmops_json

from llmops.console.presenters.run_words import state_reading


def test_desired_and_observed_are_labelled_side_by_side(tmp_path: Path) -> None:
    lab = hand_run_lab(tmp_path, "running")
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
