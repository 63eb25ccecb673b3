"""Anchors: the journal's head written into git, so that a journal cut short, replaced or
rewritten (hashes recomputed after the triggers were dropped) is caught by `verify`.

The chain alone proves only that the rows agree with each other. Two anchors live outside
SQLite: every action commit carries git trailers naming the newest journal row when it was
made (`Action`, `Journal-Row`, `Journal-Head`: for an action's own commit that is its
`started` row, for a revert commit its last step or check), and the ref `refs/llmops/journal`
names the row written after each action's outcome (succeeded, failed, interrupted).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import git
from gitdb import IStream

from llmops.rollback.journal import ENDINGS, Journal
from llmops.rollback.records import ActionRecord, Event, fold_all

TAIL_REF = "refs/llmops/journal"
SUBJECT = re.compile(r"^action (\d+)(?: reverted)?:")
"""Commits made before anchors existed still name their action in the subject."""
GREP = ("^action [0-9]+( reverted)?:", "^Action: [0-9]+$")
KEYS = ("Action", "Journal-Row", "Journal-Head")


@dataclass(frozen=True)
class Anchor:
    """An action git knows of and, when anchored, the journal row it saw (seq and hash)."""

    where: str
    action_id: int
    seq: int | None = None
    hash: str | None = None
    commit: str | None = None


def trailers(head: Event) -> str:
    """The paragraph appended to a commit's message (git's trailer format)."""
    return f"\n\nAction: {head.action_id}\nJournal-Row: {head.seq}\nJournal-Head: {head.hash}\n"


def parse(text: str) -> dict[str, str]:
    """Our trailers from the last paragraph of a message (a subject can't fake them)."""
    last = text.strip().split("\n\n")[-1]
    found = {}
    for line in last.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in KEYS:
            found[key] = value.strip()
    return found


def anchor_of(sha: str, message: str) -> Anchor | None:
    """The action a commit belongs to (None: not an action's commit)."""
    found = parse(message)
    where = f"commit {sha[:7]}"
    if all(k in found for k in KEYS) and found["Action"].isdigit():
        row = found["Journal-Row"]
        seq = int(row) if row.isdigit() else -1
        return Anchor(where, int(found["Action"]), seq, found["Journal-Head"], sha)
    subject = SUBJECT.match(message)
    return Anchor(where, int(subject.group(1)), commit=sha) if subject else None


def commit_anchors(repo: git.Repo) -> tuple[list[Anchor], set[str]]:
    """Every action commit's anchor (oldest first) and every commit reachable from HEAD."""
    text = repo.git.log("--reverse", "--format=%H%x00%B%x01")
    anchors, commits = [], set()
    for entry in text.split("\x01"):
        sha, _, message = entry.strip("\n").partition("\x00")
        if not sha:
            continue
        commits.add(sha)
        if (found := anchor_of(sha, message)) is not None:
            anchors.append(found)
    return anchors, commits


def tail_sha(repo: git.Repo) -> str | None:
    """The tail ref's target, read as git stores it (loose file, else packed-refs) without
    starting a git process: actions write and read it every time."""
    git_dir = Path(repo.git_dir)
    try:
        return (git_dir / TAIL_REF).read_text().strip() or None
    except FileNotFoundError:
        pass
    try:
        for line in (git_dir / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == TAIL_REF:
                return sha
    except FileNotFoundError:
        pass
    return None


def read_tail(repo: git.Repo) -> Anchor | None:
    sha = tail_sha(repo)
    if sha is None:
        return None
    try:
        found = parse(repo.odb.stream(bytes.fromhex(sha)).read().decode())
    except (ValueError, git.GitCommandError, OSError):
        return None
    if not all(k in found and found[k] for k in KEYS):
        return None
    row = found["Journal-Row"]
    return Anchor(TAIL_REF, int(found["Action"]), int(row) if row.isdigit() else -1,
                  found["Journal-Head"])


def write_tail(repo: git.Repo, journal: Journal, head: Event) -> None:
    """Point the tail ref at a blob naming `head` (no commit, no work tree), unless the row
    it names now is gone or changed: that evidence stays for `verify` (a CLI call's recovery
    would otherwise re-anchor a journal cut short after its `interrupted` row)."""
    old = read_tail(repo)
    if old is not None and old.seq is not None:
        row = journal.events_between(old.seq, old.seq)
        if not row or row[0].hash != old.hash:
            return
    data = trailers(head).lstrip().encode()
    blob = repo.odb.store(IStream("blob", len(data), BytesIO(data)))
    ref = Path(repo.git_dir) / TAIL_REF  # a loose ref, written as git writes one: atomically
    ref.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = ref.with_name(ref.name + ".lock")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, blob.hexsha + b"\n")
    finally:
        os.close(fd)
    os.replace(fresh, ref)


def action_commits(repo: git.Repo, *args: str) -> list[Anchor]:
    """The action commits `git log` finds (newest first), filtered by git itself."""
    text = repo.git.log(*args, "-E", *(f"--grep={g}" for g in GREP), "--format=%H%x00%B%x01")
    found = []
    for entry in text.split("\x01"):
        sha, _, message = entry.strip("\n").partition("\x00")
        if sha and (anchor := anchor_of(sha, message)) is not None:
            found.append(anchor)
    return found


def highest_action(repo: git.Repo) -> int:
    """The highest action number git knows: numbers never restart, even without lab.db.
    The tail ref names an action numbered after every one git held when it ran, and later
    actions are newer commits, so two cheap reads do; only a lab older than the tail ref
    (numbers may have restarted there) has its whole log read."""
    tail = read_tail(repo)
    found = action_commits(repo, "-n", "1") if tail is not None else action_commits(repo)
    return max([a.action_id for a in found] + [tail.action_id if tail else 0])


def verify(journal: Journal, repo: git.Repo) -> list[str]:
    """The chain, then the anchors against it, then whether the rows fold into actions."""
    problems = journal.verify()
    events = journal.events()
    anchors, commits = commit_anchors(repo)
    tail = read_tail(repo)
    if tail is not None:
        anchors.append(tail)
    if not events and anchors:
        ids = sorted({a.action_id for a in anchors})
        return [*problems, f"the journal is empty, but git holds actions {ids[0]} to {ids[-1]}"
                f" ({len(ids)}): lab.db was deleted or replaced"]
    records = {a.id: a for a in fold_all(events)}
    rows = {e.seq: e for e in events}
    last_seq = events[-1].seq if events else 0
    for anchor in anchors:
        problems += check_anchor(anchor, rows, last_seq, records)
    return problems + consistency(events, commits)


def check_anchor(
    a: Anchor, rows: dict[int, Event], last_seq: int, records: dict[int, ActionRecord]
) -> list[str]:
    """One anchor: its row is there, with its hash, and its action names its commit."""
    problems = []
    if a.seq is not None:
        row = rows.get(a.seq)
        if row is None and a.seq > last_seq:
            problems.append(f"{a.where} (action {a.action_id}) anchors row {a.seq}, but the"
                            f" journal ends at row {last_seq}: rows were cut off the end")
        elif row is None:
            problems.append(f"row {a.seq}, anchored by {a.where}, is missing")
        elif row.hash != a.hash or row.action_id != a.action_id:
            problems.append(f"row {a.seq} is not the row {a.where} anchored for action"
                            f" {a.action_id}: the journal was rewritten or replaced")
    record = records.get(a.action_id)
    if record is None:
        problems.append(f"action {a.action_id} is in git ({a.where}) but not in the journal:"
                        " its rows were deleted")
    elif (a.commit and (record.status == "succeeded" or record.status.startswith("failed"))
          and a.commit not in (record.commit, record.after_commit)):
        problems.append(f"action {a.action_id}'s rows do not name its {a.where}:"
                        " rows were deleted or rewritten")
    return problems


def consistency(events: list[Event], commits: set[str]) -> list[str]:
    """Rows that cannot have been written by actions as the engine runs them."""
    problems: list[str] = []
    newest = 0
    started: set[int] = set()
    ended: set[int] = set()
    committed: set[int] = set()
    for ev in events:
        n, what = ev.action_id, f"row {ev.seq} ({ev.event}) of action {ev.action_id}"
        if ev.event == "started":
            if n <= newest:
                problems.append(f"{what} starts after action {newest}: numbers went back")
            newest = max(newest, n)
            started.add(n)
            continue
        if n not in started:
            problems.append(f"{what} comes before the action started: rows were deleted")
        elif n in ended:
            problems.append(f"{what} comes after the action's outcome")
        elif n != newest and ev.event != "interrupted":
            problems.append(f"{what} comes after action {newest} started")
        if ev.event == "committed":
            committed.add(n)
            sha = ev.data.get("commit")
            if commits and sha not in commits:
                problems.append(f"{what} names commit {str(sha)[:7]}, which is not in git")
        elif ev.event in ENDINGS:
            ended.add(n)
            if ev.event != "interrupted" and n not in committed:
                problems.append(f"{what} has no committed row before it: rows were deleted")
    return problems


# -- a lost journal rebuilt from git -------------------------------------------------------------
REBUILT_WHO = "unknown (rebuilt from git)"
ROLLBACK_OF = re.compile(r"^rollback of action (\d+)\b")


def rebuild(journal: Journal, repo: git.Repo, folders: dict[str, str]) -> list[int]:
    """Write the actions git holds into an empty journal, oldest first; returns their ids.

    Each action commit gives its number and summary (the subject), the resources it touched
    (its files; `folders` maps a folder to its kind), its before-commit (the parent) and,
    when a `reverted` commit follows, that it failed and was reverted. Who acted, timings,
    steps and checks were only in the lost rows: the rows say `rebuilt`, and `verify` goes on
    reporting the original rows as lost (the anchors name their hashes)."""
    found, _ = commit_anchors(repo)
    own: dict[int, git.Commit] = {}
    reverts: dict[int, git.Commit] = {}
    for anchor in found:
        assert anchor.commit is not None
        commit = repo.commit(anchor.commit)
        subject = str(commit.message).split("\n", 1)[0]
        target = reverts if re.match(r"^action \d+ reverted:", subject) else own
        target.setdefault(anchor.action_id, commit)
    ids = sorted(own)
    for action_id in ids:
        _rebuild_one(journal, repo, action_id, own[action_id], reverts.get(action_id), folders)
    return ids


def _rebuild_one(
    journal: Journal, repo: git.Repo, action_id: int, commit: git.Commit,
    revert: git.Commit | None, folders: dict[str, str],
) -> None:
    subject = str(commit.message).split("\n", 1)[0]
    summary = subject.split(": ", 1)[1] if ": " in subject else subject
    refs = []
    for path in repo.git.diff_tree("--no-commit-id", "--name-only", "-r", "--root",
                                   commit.hexsha).splitlines():
        folder, _, file = path.partition("/")
        if folder in folders and file.endswith(".toml") and "/" not in file:
            refs.append([folders[folder], file[:-5]])
    parent = commit.parents[0].hexsha if commit.parents else ""
    rollback_of = ROLLBACK_OF.match(summary)
    when = commit.committed_datetime.isoformat()
    journal.append(action_id, "started", {
        "kind": "rollback" if rollback_of else "apply",
        "summary": summary,
        "who": REBUILT_WHO,
        "refs": refs,
        "before_commit": parent,
        "rollback_of": int(rollback_of.group(1)) if rollback_of else None,
        "specs": {},
        "rebuilt": {"commit": commit.hexsha, "committed_at": when},
    })
    journal.append(action_id, "committed", {"commit": commit.hexsha, "rebuilt": True})
    if revert is None:
        journal.append(action_id, "succeeded", {"after_commit": commit.hexsha, "rebuilt": True})
        return
    error = str(revert.message).split("\n", 1)[0].split(" reverted: ", 1)[-1]
    journal.append(action_id, "failed", {
        "error": error, "reverted": True, "after_commit": revert.hexsha,
        "before_commit": parent, "rebuilt": True,
    })
