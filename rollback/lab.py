"""The lab: desired state as TOML files in a git repo, plus the journal in `lab.db`."""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import git
import platformdirs
import tomli_w
from git.refs import SymbolicReference
from gitdb.base import IStream
from pydantic import ValidationError

from llmops.ops.kinds.base import Spec, SpecError
from llmops.rollback import anchors
from llmops.rollback.journal import ENDINGS
from llmops.rollback.kinds import KINDS, kind_for_folder
from llmops.rollback.labstore import LabObjectDB, open_journal
from llmops.rollback.lock import LabLock
from llmops.rollback.records import Event

Ref = tuple[str, str]
IGNORED = ["lab.db", "lab.db-journal", "lab.db-wal", "lab.db-shm", "known_hosts", ".lock", ""]
AUTHOR = git.Actor("llmops", "llmops@localhost")


class LabMissing(ValueError):
    """There is no lab at this path: only an explicit create makes one (a typo must not)."""

    def __init__(self, path: Path, message: str | None = None) -> None:
        self.path = path
        super().__init__(
            message or f"there is no lab at {path}: create it with `llmops --lab {path} init`"
        )


class LabFileError(ValueError):
    """A desired-state file that cannot be read: names the file and the line."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


def default_lab_path() -> Path:
    """`$LLMOPS_LAB`, else the platform's data dir."""
    env = os.environ.get("LLMOPS_LAB")
    return Path(env) if env else Path(platformdirs.user_data_dir("llmops")) / "lab"


def is_lab(path: Path) -> bool:
    """A lab is a folder with its git repo and its journal (any other folder is not one).
    One whose lab.db was lost is still a lab (its .gitignore names lab.db): it opens, and
    history warns that git holds actions the journal lacks."""
    if not (path / ".git").is_dir():
        return False
    ignore = path / ".gitignore"
    lost_db = ignore.is_file() and "lab.db" in ignore.read_text().split()
    return (path / "lab.db").is_file() or lost_db


@contextmanager
def private_umask() -> Iterator[None]:
    """Files the lab writes are 0600 and folders 0700."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@dataclass(frozen=True)
class SpecFile:
    kind: str
    name: str
    path: str  # relative to the lab


def spec_path(kind: str, name: str) -> str:
    return f"{KINDS[kind].folder}/{name}.toml"


def names_in(path: Path, kind: str) -> list[str]:
    """The names of a kind's resources in a lab's working tree, without opening the lab
    (nothing written, no journal): what shell completion offers."""
    return sorted(p.stem for p in (path / KINDS[kind].folder).glob("*.toml"))


def parse_spec(kind: str, name: str, text: str, path: str) -> Spec:
    """TOML text -> validated spec; errors name the file, the line and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabFileError(path, f"not valid TOML: {exc}") from None
    try:
        return KINDS[kind].Spec.model_validate({**data, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise LabFileError(path, f"field {field}: {first['msg']}") from None


class Lab:
    """Opens a lab folder (creating it unless `create` is off); reads and writes desired state."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not is_lab(path):
            raise LabMissing(path)
        with private_umask():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)
            if not (path / ".git").exists():
                self.repo = git.Repo.init(path, initial_branch="main", odbt=LabObjectDB)
                (path / ".gitignore").write_text("\n".join(IGNORED))
                self.repo.index.add([".gitignore"])
                self.repo.index.commit("lab created", author=AUTHOR, committer=AUTHOR)
            else:
                self.repo = git.Repo(path, odbt=LabObjectDB)
            self._private_refs()
            self.journal, damage = open_journal(path / "lab.db", path / ".git")
            self.notices: list[str] = [damage] if damage else []
            """What the lab had to repair when it opened (a damaged or lost lab.db)."""
            self.rebuilt = self._rebuild_if_lost()
        self.lock = LabLock(path / ".lock")
        self.known_hosts = path / "known_hosts"
        self._git_highest: int | None = None
        self.journal.subscribe(self._anchor_tail)

    def _rebuild_if_lost(self) -> list[int]:
        """An empty journal in a lab whose git holds actions: lab.db was deleted, truncated
        or unreadable. The actions are written back from git (anchors.rebuild), with a notice."""
        if self.journal.max_action_id() or not anchors.highest_action(self.repo):
            return []
        folders = {k.folder: k.name for k in KINDS.values()}
        ids = anchors.rebuild(self.journal, self.repo, folders)
        if ids:
            self.notices.append(
                f"the journal (lab.db) was empty but git holds actions {ids[0]} to {ids[-1]}:"
                f" rebuilt {len(ids)} from git's commits (what, resources, commits, reverted"
                " or not); who acted, steps, checks and timings were only in the lost rows,"
                " and `llmops history --verify` goes on naming them lost")
        return ids

    def close(self) -> None:
        self.journal.close()
        self.repo.close()

    # -- git -----------------------------------------------------------------------------
    def head(self) -> str:
        """HEAD's sha, read from its ref files (no object lookup)."""
        return str(SymbolicReference.dereference_recursive(self.repo, "HEAD"))

    def commit(self, message: str, paths: list[str]) -> str:
        """Stage the given files (added, changed or removed) and commit; returns the sha.
        Made during an action, the message ends with trailers anchoring the journal's newest
        row (the action's `started` row, or for a revert its last step or check), so git can
        vouch for the journal; other commits (a test's hand edit) carry none.

        All in-process (gitdb, the index, the branch's ref file written as git writes it):
        git processes and GitPython's ref machinery were most of an action's own time."""
        last = self.journal.head()
        if last is not None and last.event not in ENDINGS:
            message = message.rstrip() + anchors.trailers(last)
        with private_umask():
            index = self.repo.index
            present = [p for p in paths if (self.path / p).exists()]
            gone = [p for p in paths if not (self.path / p).exists()]
            if present:
                index.add(present, write=not gone)
            if gone:
                for rel in gone:
                    index.entries.pop((rel, 0), None)
                index.write()
            os.chmod(index.path, 0o600)  # GitPython's writer chmods it 0644
            tree = index.write_tree()
            parent = self.head()
            if tree.hexsha == self._tree_of(parent):
                return parent
            sha = self._write_commit(tree.hexsha, parent, message)
            self._move_branch(sha)
        return sha

    def _tree_of(self, commit: str) -> str:
        """A commit's tree sha, from the object's first line ("tree <sha>")."""
        first = self.repo.odb.stream(bytes.fromhex(commit)).read().split(b"\n", 1)[0]
        return first.split(b" ", 1)[1].decode()

    def _write_commit(self, tree: str, parent: str, message: str) -> str:
        """A commit object as git writes one (author and committer llmops, UTC)."""
        stamp = f"{int(time.time())} +0000"
        who = f"{AUTHOR.name} <{AUTHOR.email}> {stamp}"
        body = (f"tree {tree}\nparent {parent}\nauthor {who}\ncommitter {who}\n\n"
                f"{message.rstrip()}\n").encode()
        stored = self.repo.odb.store(IStream("commit", len(body), BytesIO(body)))
        return str(stored.hexsha.decode())

    def _move_branch(self, sha: str) -> None:
        """Point HEAD's branch at `sha` the way git does: `<ref>.lock` made exclusively,
        written, renamed over the ref (0600: the lab's history is its owner's alone)."""
        git_dir = Path(self.repo.git_dir)
        target = (git_dir / "HEAD").read_text().strip()
        ref = git_dir / (target[5:] if target.startswith("ref: ") else "HEAD")
        lock = ref.with_name(ref.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{sha}\n".encode())
        finally:
            os.close(fd)
        os.replace(lock, ref)

    def _private_refs(self) -> None:
        """GitPython chmods the refs it writes to 0644 whatever the umask (gitdb's LockedFD):
        HEAD and the branch go back to 0600, so the lab's history is its owner's alone."""
        git_dir = Path(self.repo.git_dir)
        refs = [git_dir / "HEAD"]
        if not self.repo.head.is_detached:
            refs.append(git_dir / self.repo.head.reference.path)
        for ref in refs:
            if ref.exists():
                os.chmod(ref, 0o600)

    # -- the journal's anchors in git ----------------------------------------------------
    def _anchor_tail(self, event: Event) -> None:
        """After an action's outcome row, point refs/llmops/journal at it (outside SQLite)."""
        if event.event in ENDINGS:
            try:
                with private_umask():
                    anchors.write_tail(self.repo, self.journal, event)
            except (git.GitCommandError, OSError):
                pass  # the row is written: a stale tail anchor only leaves it unanchored

    def next_action_id(self) -> int:
        """After the highest action in the journal and in git: numbers never restart, even
        when lab.db was deleted (git would hold two "action 1" commits). Git is read once per
        opening (the journal then holds every later action: they are written under the lock
        through it), not per action."""
        if self._git_highest is None:
            self._git_highest = anchors.highest_action(self.repo)
        return self.journal.next_action_id(self._git_highest)

    def journal_gap(self) -> int:
        """The highest action git knows whose original rows the journal lacks (0: none):
        lab.db was deleted, replaced or cut short (and maybe rebuilt from git since), so
        history read from it is incomplete."""
        in_git = anchors.highest_action(self.repo)
        lacking = in_git if in_git > self.journal.max_action_id() else 0
        return max(lacking, self.journal.rebuilt_through())

    def verify(self) -> list[str]:
        """The journal's chain and its anchors in git (rollback/anchors.py)."""
        problems = anchors.verify(self.journal, self.repo)
        rebuilt = self.journal.rebuilt_through()
        if rebuilt:
            problems.insert(0, f"actions up to {rebuilt} were rebuilt from git after lab.db"
                               " was lost: their original rows are gone")
        return problems

    def text_at(self, rel: str, commit: str | None) -> str | None:
        """A file's text at a commit (None: absent); commit None means the working tree."""
        if commit is None:
            p = self.path / rel
            return p.read_text() if p.exists() else None
        try:
            blob = self.repo.commit(commit).tree / rel
        except KeyError:
            return None
        return blob.data_stream.read().decode()

    def diff(self, a: str, b: str, paths: list[str] | None = None) -> str:
        return self.repo.git.diff(a, b, "--", *(paths or []))

    # -- specs ---------------------------------------------------------------------------
    def spec_files(self, commit: str | None = None) -> list[SpecFile]:
        """Every desired-state file at a commit (None: the working tree)."""
        found: list[SpecFile] = []
        if commit is None:
            for folder in sorted({k.folder for k in KINDS.values()}):
                for p in sorted((self.path / folder).glob("*.toml")):
                    found.append(
                        SpecFile(kind_for_folder(folder).name, p.stem, f"{folder}/{p.name}")
                    )
            return found
        tree = self.repo.commit(commit).tree
        for folder in sorted({k.folder for k in KINDS.values()}):
            try:
                sub = tree / folder
            except KeyError:
                continue
            for blob in sub.blobs:
                if blob.name.endswith(".toml"):
                    found.append(
                        SpecFile(kind_for_folder(folder).name, blob.name[:-5], str(blob.path))
                    )
        return found

    def read_spec(self, kind: str, name: str, commit: str | None = None) -> Spec | None:
        rel = spec_path(kind, name)
        text = self.text_at(rel, commit)
        return None if text is None else parse_spec(kind, name, text, rel)

    def specs(self, commit: str | None = None) -> dict[Ref, Spec]:
        """Every desired spec; a broken file raises LabFileError naming it."""
        out: dict[Ref, Spec] = {}
        for f in self.spec_files(commit):
            text = self.text_at(f.path, commit)
            if text is not None:
                out[(f.kind, f.name)] = parse_spec(f.kind, f.name, text, f.path)
        return out

    def write_spec(self, kind: str, name: str, spec: Spec | None) -> str:
        """Write (or remove, for None) one desired-state file; returns its path."""
        rel = spec_path(kind, name)
        target = self.path / rel
        with private_umask():
            if spec is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(exist_ok=True, mode=0o700)
                target.write_text(tomli_w.dumps(spec.to_toml_dict()))
        return rel

    def hand_edits(self) -> list[Ref]:
        """Resources whose working-tree file differs from the last commit."""
        refs: set[Ref] = set()
        for f in self.spec_files(None) + self.spec_files(self.head()):
            if self.text_at(f.path, None) != self.text_at(f.path, self.head()):
                refs.add((f.kind, f.name))
        return sorted(refs)


def require_name(name: str) -> None:
    """Validate a resource name early, with the field named."""
    from llmops.ops.kinds.base import NAME_HINT, NAME_RE

    if not NAME_RE.match(name):
        raise SpecError("name", f"{name!r} is not a valid name", NAME_HINT)
