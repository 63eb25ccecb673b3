"""Journal rows read back as typed rows, and one verdict (`ok`) for "it did what was asked"."""

from __future__ import annotations

from pathlib import Path

from llmops.rollback.journal import Journal
from llmops.rollback.records import CheckRow, StepRow


def test_rows_are_typed_and_ok_needs_every_check(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "lab.db")
    journal.append(1, "started", {"summary": "s", "refs": [["host", "h"]]})
    journal.append(1, "step", {"ref": "host/h", "verb": "probe", "detail": "d", "phase": "apply",
                               "ok": True, "seconds": 0.1, "from_a_newer_llmops": 1})
    journal.append(1, "check", {"ref": "host/h", "name": "reachable", "ok": True, "detail": "",
                                "seconds": 0.0, "phase": "apply"})
    journal.append(1, "check", {"ref": "host/h", "name": "probe matches", "ok": False,
                                "detail": "os changed", "seconds": 0.0, "phase": "apply"})
    journal.append(1, "succeeded", {"seconds": 0.2})
    record = journal.action(1)
    assert record is not None
    assert record.steps == [StepRow("host/h", "probe", "d", "apply", True, 0.1)]
    assert [type(c) for c in record.checks] == [CheckRow, CheckRow]
    assert record.status == "succeeded" and not record.checks_passed
    assert not record.ok and record.display_status == "succeeded, checks failed"
