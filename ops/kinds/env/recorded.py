"""The journal's copy of an env's manifests (pure): every build, restore and repair journals its
manifest's lines (`set`, `manifest`, `manifest_lines`), every snapshot the before-state's
(`before_set`, `before_manifest`, `before_freeze`). When a host lost its manifests folder, a
rollback to a pruned set would rebuild from the pins (whatever pip resolves today); with the
journal's copy, verified against its sha256 (the manifest's name), it is restored exactly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


def manifest_sha(lines: list[str]) -> str:
    """The manifest's name: the sha256 of its text as envctl stores it (a line each)."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """What the journal holds for one set: its manifest (verified), or why none is used."""

    sha: str | None = None
    lines: tuple[str, ...] = ()
    note: str | None = None


def recorded_manifest(facts: list[dict[str, Any]], target: str) -> Recorded:
    """The newest manifest the journal's step facts (newest first) hold for set `target`:
    a build's (exactly what the set was built to) or an undrifted snapshot's. A copy whose
    lines do not hash to its sha256 is never used: the note says so."""
    note = None
    for found in facts:
        candidates = [(found.get("set"), found.get("manifest"), found.get("manifest_lines"))]
        if not found.get("drifted"):  # a drifted venv's freeze is not its set's manifest
            candidates.append((found.get("before_set"), found.get("before_manifest"),
                               found.get("before_freeze")))
        for at, sha, lines in candidates:
            if at != target or not isinstance(sha, str) or not isinstance(lines, list):
                continue
            if manifest_sha([str(x) for x in lines]) == sha:
                return Recorded(sha=sha, lines=tuple(str(x) for x in lines))
            note = note or (f"the journal's copy of manifest {sha[:12]} does not hash to its "
                            "sha256: not used")
    return Recorded(note=note)
