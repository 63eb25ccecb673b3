"""The backup-filesystem module: backups are folders <backup-dir>/<id>/ written in the
background (create answers STARTED, the status walks STARTED -> TRANSFERRING -> TRANSFERRED ->
SUCCESS), restores likewise, and a restore of a collection that exists fails the way Weaviate's
does: accepted, then FAILED with "class name X already exists" (usecases/backup/scheduler.go,
coordinator.go). The folder's data file is the stand-in's own format, not Weaviate's."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from .errors import NotFound, Unprocessable
from .store import Store

BACKUP_FILE = "backup_config.json"
RESTORE_FILE = "restore_config.json"
DATA_FILE = "standin-data.json"
NODE = "node1"
_ID = re.compile(r"^[a-z0-9_-]+$")


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class Backups:
    def __init__(self, store: Store, root: Path | None, version: str, delay: float = 0.0,
                 on_done: Any = None) -> None:
        self.store = store
        self.root = root
        self.version = version
        self.delay = delay  # seconds each phase takes, so callers see STARTED
        self.on_done = on_done
        self.lock = threading.Lock()
        self.active: dict[tuple[str, str], dict[str, Any]] = {}  # (op, id) -> status
        self.threads: list[threading.Thread] = []

    def home(self, backup_id: str) -> Path:
        if self.root is None:
            raise Unprocessable('no backup backend "filesystem": backup: backend filesystem not '
                                "found, did you enable the right module?")
        return self.root / backup_id

    def _meta(self, backup_id: str, name: str) -> dict[str, Any] | None:
        path = self.home(backup_id) / name
        if not path.exists():
            return None
        return dict(json.loads(path.read_text()))

    def _write(self, backup_id: str, name: str, meta: dict[str, Any]) -> None:
        home = self.home(backup_id)
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / (name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, home / name)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def wait(self) -> None:
        for thread in list(self.threads):
            thread.join()

    # -- create ------------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.home("")  # refuses without the module
        backup_id = str(body.get("id") or "")
        if not _ID.match(backup_id):
            raise Unprocessable(f"invalid backup id: '{backup_id}' allowed characters are "
                                "lowercase, 0-9, _, -")
        include, exclude = list(body.get("include") or []), list(body.get("exclude") or [])
        if include and exclude:
            raise Unprocessable("malformed request: 'include' and 'exclude' cannot both contain "
                                "values")
        with self.store.lock, self.lock:
            names = include or sorted(self.store.collections)
            if not names:
                raise Unprocessable("no available classes to backup, there's nothing to do here")
            names = [n for n in names if n not in exclude]
            if not names:
                raise Unprocessable(f"empty class list: please choose from : {names}")
            for name in names:
                if self.store.find(name) is None:
                    raise Unprocessable(f"class {name} doesn't exist")
            old = self._meta(backup_id, BACKUP_FILE)
            if (old is not None and old.get("status") != "CANCELED") or \
                    ("create", backup_id) in self.active:
                raise Unprocessable(f'backup "{backup_id}" already exists at '
                                    f'"{self.home(backup_id)}"')
            if any(op == "create" for op, _ in self.active):
                running = next(i for op, i in self.active if op == "create")
                raise Unprocessable(f"backup {running} already in progress")
            snapshot = self.store.snapshot(names)
            status = {"id": backup_id, "backend": "filesystem", "path": str(self.home(backup_id)),
                      "status": "STARTED", "classes": names, "startedAt": _stamp(),
                      "version": self.version}
            self.active[("create", backup_id)] = status
        self._spawn(self._create, backup_id, snapshot, status)
        return {"backend": "filesystem", "classes": names, "id": backup_id,
                "path": str(self.home(backup_id)), "status": "STARTED"}

    def _create(self, backup_id: str, snapshot: dict[str, Any], status: dict[str, Any]) -> None:
        try:
            for phase in ("TRANSFERRING", "TRANSFERRED"):
                time.sleep(self.delay)
                status["status"] = phase
            node_dir = self.home(backup_id) / NODE
            node_dir.mkdir(parents=True, exist_ok=True)
            (node_dir / DATA_FILE).write_text(json.dumps(snapshot))
            time.sleep(self.delay)
            status.update(status="SUCCESS", completedAt=_stamp())
        except OSError as err:
            status.update(status="FAILED", error=str(err), completedAt=_stamp())
        self._write(backup_id, BACKUP_FILE, status)
        with self.lock:
            self.active.pop(("create", backup_id), None)
        if self.on_done is not None:
            self.on_done()

    def status(self, backup_id: str, op: str = "create") -> dict[str, Any]:
        with self.lock:
            live = self.active.get((op, backup_id))
        meta = dict(live) if live else self._meta(
            backup_id, BACKUP_FILE if op == "create" else RESTORE_FILE)
        if meta is None:
            raise NotFound(f'backup id "{backup_id}" does not exist: not found')
        out = {"backend": "filesystem", "id": backup_id, "path": meta["path"],
               "status": meta["status"]}
        if meta.get("error"):
            out["error"] = meta["error"]
        if op == "create":
            out["startedAt"] = meta.get("startedAt")
            if meta.get("completedAt"):
                out["completedAt"] = meta["completedAt"]
        return out

    def listing(self) -> list[dict[str, Any]]:
        out = []
        self.home("")  # refuses without the module
        assert self.root is not None
        for home in sorted(self.root.glob("*/")) if self.root.exists() else []:
            meta = self._meta(home.name, BACKUP_FILE)
            if meta is not None:
                out.append({"id": meta["id"], "classes": meta["classes"],
                            "status": meta["status"], "startedAt": meta.get("startedAt"),
                            "completedAt": meta.get("completedAt"), "size": 0})
        return sorted(out, key=lambda m: m["startedAt"] or "")

    def cancel(self, backup_id: str) -> None:
        meta = self._meta(backup_id, BACKUP_FILE)
        if meta is not None and meta["status"] == "SUCCESS":
            raise Unprocessable(f'backup "{backup_id}" already succeeded')

    # -- restore -----------------------------------------------------------------------------
    def restore(self, backup_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.home("")  # refuses without the module
        meta = self._meta(backup_id, BACKUP_FILE)
        if meta is None:
            raise NotFound(f'backup id "{backup_id}" does not exist: not found')
        if meta["status"] != "SUCCESS":
            raise Unprocessable(f"invalid backup in scheduler {self.home(backup_id)} status: "
                                f"{meta['status']}")
        include, exclude = list(body.get("include") or []), list(body.get("exclude") or [])
        if include and exclude:
            raise Unprocessable("malformed request: 'include' and 'exclude' cannot both contain "
                                "values")
        for name in include:
            if name not in meta["classes"]:
                raise Unprocessable(f"class {name} doesn't exist in the backup, but does have "
                                    f"{meta['classes']}: ")
        names = [n for n in (include or meta["classes"]) if n not in exclude]
        if not names:
            raise Unprocessable(f"nothing left to restore: please choose from : "
                                f"{meta['classes']}")
        with self.lock:
            running = [i for op, i in self.active if op == "restore"]
            if running:
                raise Unprocessable(f"restoration {running[0]} already in progress")
            status = {"id": backup_id, "backend": "filesystem", "path": str(self.home(backup_id)),
                      "status": "STARTED", "classes": names}
            self.active[("restore", backup_id)] = status
        self._write(backup_id, RESTORE_FILE, status)
        self._spawn(self._restore, backup_id, names, status)
        return {"backend": "filesystem", "classes": names, "id": backup_id,
                "path": str(self.home(backup_id)), "status": "STARTED"}

    def _restore(self, backup_id: str, names: list[str], status: dict[str, Any]) -> None:
        time.sleep(self.delay)
        status["status"] = "TRANSFERRING"
        errors = []
        try:
            data = json.loads((self.home(backup_id) / NODE / DATA_FILE).read_text())
            time.sleep(self.delay)
            with self.store.lock:
                for entry in data["collections"]:
                    name = entry["schema"]["class"]
                    if name not in names:
                        continue
                    if name in self.store.collections:
                        errors.append(f'"{name}": class name {name} already exists')
                        continue
                    self.store.collections[name] = self.store.from_snapshot(entry)
                    self.store.generation += 1
        except (OSError, ValueError, KeyError) as err:
            errors.append(str(err))
        if errors:
            status.update(status="FAILED", error=f"could not restore classes: [{' '.join(errors)}]")
        else:
            status["status"] = "SUCCESS"
        self._write(backup_id, RESTORE_FILE, status)
        with self.lock:
            self.active.pop(("restore", backup_id), None)
        if self.on_done is not None:
            self.on_done()
