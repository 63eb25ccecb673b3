"""The lab lock: one actor changes a lab at a time; the others are told who holds it."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


class LabBusy(RuntimeError):
    """Another console or CLI call is acting on this lab right now."""

    def __init__(self, holder: LockHolder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"the lab is busy: {who}; try again when it finishes")


@dataclass(frozen=True)
class LockHolder:
    pid: int
    command: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}) holds the lock since {self.since}"


class LabLock:
    """An flock on `<lab>/.lock`; the file's text names the holder for the ones who wait."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when it is free."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read_holder()
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def last_holder(self) -> LockHolder | None:
        """Who the lock file names, even when nobody holds the lock: a holder killed mid-action
        leaves its line there (a clean release empties it)."""
        return self._read_holder()

    def _read_holder(self) -> LockHolder | None:
        try:
            data = json.loads(self.path.read_text() or "{}")
            return LockHolder(int(data["pid"]), str(data["command"]), str(data["since"]))
        except (OSError, ValueError, KeyError):
            return None

    @contextmanager
    def hold(self, command: str, wait: float = 5.0) -> Iterator[None]:
        """Hold the lock for one action, waiting up to `wait` seconds for the current holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LabBusy(self._read_holder()) from None
                    time.sleep(0.1)
            since = datetime.now(UTC).isoformat(timespec="seconds")
            os.ftruncate(fd, 0)
            os.pwrite(
                fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0
            )
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def current_command() -> str:
    """A short description of this process for the lock file."""
    return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:120]
