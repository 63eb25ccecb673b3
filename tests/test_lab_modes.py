"""The lab's files are private (issue 13, item 6 in part): after a full scenario through the
real CLI — init, an action, a failed and reverted action, a rollback, a lost lab.db rebuilt
from git, verify, audit — every file in the lab (lab.db and its WAL, the git repo and its
objects and refs, known_hosts, the lock) is readable by its owner only and every folder 0700.
Git makes its objects read-only (0400 under the lab's umask), so files are checked as "no
bit for group or others", folders as exactly 0700."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from labtools import llmops, llmops_json


def loose_modes(lab: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(lab):
        for name in dirs:
            mode = stat.S_IMODE(os.lstat(Path(folder) / name).st_mode)
            if mode != 0o700:
                found.append(f"{Path(folder, name).relative_to(lab)}/ {mode:o}")
        for name in files:
            mode = stat.S_IMODE(os.lstat(Path(folder) / name).st_mode)
            if mode & 0o077:
                found.append(f"{Path(folder, name).relative_to(lab)} {mode:o}")
    return found


def test_lab_files_are_0600_and_folders_0700_after_a_full_scenario(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a shell usually has: the lab must not depend on it
    try:
        lab = tmp_path / "lab"
        llmops(lab, "init", create=False)
        broken = tmp_path / "broken-python"
        broken.write_text("#!/bin/sh\nexit 3\n")
        broken.chmod(0o755)
        llmops(lab, "host", "add", "m1", "--local", "--python", sys.executable,
               "--workdir", str(tmp_path / "w1"))
        llmops(lab, "host", "add", "m2", "--local", "--python", str(broken),
               "--workdir", str(tmp_path / "w2"), check=1)
        llmops(lab, "rollback", "1")
        (lab / "known_hosts").touch(mode=0o600)  # as ops/ssh.py makes it on first trust
        (lab / "lab.db").write_bytes(b"not a database")  # moved aside and rebuilt
        llmops(lab, "history")
        assert list(lab.glob("lab.db-damaged-*"))
        assert llmops_json(lab, "history", "--verify", check=1)["problems"]
        llmops(lab, "audit")
    finally:
        os.umask(old)
    assert stat.S_IMODE(lab.stat().st_mode) == 0o700
    for name in ("lab.db", ".lock", ".git", "hosts", "known_hosts"):
        assert (lab / name).exists(), name
    loose = loose_modes(lab)
    assert not loose, "\n".join(loose)
