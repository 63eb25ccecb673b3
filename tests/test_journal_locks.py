"""A lab opened twice in one process must not blind the first journal to other processes.

Reading lab.db's header with a plain file (the damage check) and closing it drops every POSIX
lock the process holds on the file; another process's last close then checkpoints and resets
the WAL under the open journal, which reads stale rows and later "database disk image is
malformed". The check now leaves a file this process has open to SQLite (journal.open_here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llmops.rollback.journal import Journal, open_here
from llmops.rollback.lab import Lab
from llmops.rollback.labstore import damaged

WRITER = """
import sys
from pathlib import Path
from llmops.rollback.journal import Journal
journal = Journal(Path(sys.argv[1]))
for i in range(20):
    journal.append(2, "note", {"i": i})
journal.close()
"""


def test_a_second_open_in_process_keeps_the_first_journal_current(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    journal = Journal(db)
    journal.append(1, "started", {})
    assert open_here(db)
    for round_ in range(1, 6):
        assert damaged(db) is None  # what every Lab() in this process asks first
        subprocess.run([sys.executable, "-c", WRITER, str(db)], check=True)
        assert journal.row_count() == 1 + 20 * round_, "the open journal reads stale rows"
    assert journal.verify() == []
    journal.close()
    assert not open_here(db)


def test_two_labs_in_one_process_see_each_others_actions(tmp_path: Path) -> None:
    first = Lab(tmp_path / "lab")
    first.journal.append(1, "started", {})
    second = Lab(tmp_path / "lab")
    subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "lab" / "lab.db")], check=True)
    assert first.journal.row_count() == second.journal.row_count() == 21
    assert not list(tmp_path.joinpath("lab").glob("lab.db*-damaged-*"))
    first.close()
    second.close()
