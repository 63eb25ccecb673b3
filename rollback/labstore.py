"""The lab's two stores as they are opened: git's object database (loose objects in-process)
and the journal's SQLite file (checked for damage without disturbing SQLite's locks)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from git.db import GitCmdObjectDB
from gitdb import LooseObjectDB
from gitdb.base import IStream, OInfo, OStream
from gitdb.exc import BadObject

from llmops.rollback.journal import Journal, open_here


class LabObjectDB(GitCmdObjectDB):
    """Git's object store, loose objects read and written in-process (gitdb); packed ones
    (after a `git gc`) through git as before. GitPython starts a `git hash-object` per object
    written (three per action) and asks its `git cat-file` process for every object read
    (about twenty per action): together most of the engine's own time. Objects are 0400:
    gitdb's default chmod (0444) would give the lab's history to every local user."""

    new_objects_mode = 0o400

    def store(self, istream: IStream) -> IStream:
        return LooseObjectDB.store(self, istream)

    def info(self, binsha: bytes) -> OInfo:
        try:
            return LooseObjectDB.info(self, binsha)
        except BadObject:
            return super().info(binsha)

    def stream(self, binsha: bytes) -> OStream:
        try:
            return LooseObjectDB.stream(self, binsha)
        except BadObject:
            return super().stream(binsha)


SQLITE_MAGIC = b"SQLite format 3\x00"


def damaged(db: Path) -> str | None:
    """Why a lab.db cannot be a whole SQLite file (None: it may be). From its header alone:
    a file cut short is smaller than the pages its header counts. Never read while this
    process has the journal open: closing the read would drop SQLite's locks (open_here)."""
    if open_here(db):
        return None  # this process reads it through SQLite already
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # SQLite makes an empty database of it
    with db.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "not an SQLite database"
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    if pages and size < page * pages:
        return f"cut short: {size} of its {page * pages} bytes"
    return None


def sqlite_reads_it_whole(db: Path, after: float = 0.0) -> bool:
    """SQLite's own verdict, asked only when the header looks cut short: under WAL another
    process's checkpoint can write page 1 before the file grows, so the header alone would
    call a live journal damaged and move it aside under its writers' feet."""
    time.sleep(after)
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return bool(con.execute("pragma quick_check").fetchone()[0] == "ok")
        finally:
            con.close()
    except sqlite3.OperationalError:
        return True  # busy: another process has it open and working, so SQLite can read it
    except sqlite3.DatabaseError:
        return False


def open_journal(db: Path, git_dir: Path) -> tuple[Journal, str | None]:
    """The journal, or a fresh one when lab.db is damaged: the damaged file is kept beside it
    (`lab.db-damaged-TIME`, excluded from git) and the notice says so."""
    problem = damaged(db)
    if problem is None:
        journal: Journal | None = None
        try:
            journal = Journal(db)
            journal.max_action_id()
            return journal, None
        except sqlite3.OperationalError:
            if journal is not None:
                journal.close()
            raise  # busy or locked by another process: a live journal, never "damaged"
        except sqlite3.DatabaseError as exc:
            if journal is not None:
                journal.close()
            problem = str(exc)
    # Only SQLite reading every page twice, a moment apart, may call it damaged: the header
    # can race another process's checkpoint, and a file moved aside under its writers' feet
    # would lose what they write next.
    if sqlite_reads_it_whole(db) or sqlite_reads_it_whole(db, after=0.5):
        journal = Journal(db)
        journal.max_action_id()  # whole: an error now is this process's own, not the file's
        return journal, None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        old = db.with_name(db.name + suffix)
        if old.exists():
            old.rename(db.with_name(f"{db.name}{suffix}-damaged-{stamp}"))
    exclude = git_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if "lab.db*-damaged-*" not in (exclude.read_text() if exclude.exists() else ""):
        with exclude.open("a") as f:
            f.write("\nlab.db*-damaged-*\n")
    return Journal(db), f"lab.db was unreadable ({problem}): kept as {db.name}-damaged-{stamp}"
