"""One stand-in instance: the store, REST on a thread, gRPC on its pool, and a handle to stop
it (saving the data dir). Used in-process by tests and by __main__ for the standalone binary."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from . import VERSION
from .auth import Auth
from .backups import Backups
from .grpc_service import MAX_MESSAGE, start_grpc
from .modules import Modules
from .rest import StandinHTTPServer
from .store import Store

GIT_HASH = "standin"


@dataclass
class App:
    store: Store
    auth: Auth
    backups: Backups
    host: str
    http_port: int
    data_dir: Path | None = None
    node_name: str = "node1"
    verbose: bool = False
    save_lock: threading.Lock = field(default_factory=threading.Lock)
    saved_generation: int = 0

    def meta(self) -> dict[str, Any]:
        return {"hostname": f"http://{self.host}:{self.http_port}",
                "modules": {**({} if self.backups.root is None else
                               {"backup-filesystem": {"backupsPath": str(self.backups.root)}}),
                            **self.store.modules.meta()},
                "version": VERSION, "grpcMaxMessageSize": MAX_MESSAGE}

    def node(self, collection: str | None, verbose: bool) -> dict[str, Any]:
        colls = list(self.store.collections.values())
        if collection is not None:
            colls = [c for c in colls if c.name == collection[:1].upper() + collection[1:]]
        out: dict[str, Any] = {
            "batchStats": {"queueLength": 0, "ratePerSecond": 0},
            "gitHash": GIT_HASH, "name": self.node_name, "status": "HEALTHY", "version": VERSION}
        if verbose:
            out["shards"] = [{"class": c.name, "name": c.shard, "objectCount": len(c.objects),
                              "vectorIndexingStatus": "READY", "vectorQueueLength": 0,
                              "compressed": False, "loaded": True, "numberOfReplicas": 1,
                              "replicationFactor": 1} for c in colls]
            out["stats"] = {"objectCount": sum(len(c.objects) for c in colls),
                            "shardCount": len(colls)}
        return out

    def statistics(self) -> dict[str, Any]:
        """/v1/cluster/statistics of a one-node Raft cluster."""
        return {"statistics": [{
            "name": self.node_name, "status": "HEALTHY", "ready": True, "open": True,
            "dbLoaded": True, "isVoter": True, "leaderId": self.node_name,
            "leaderAddress": f"{self.host}:8300", "candidates": {},
            "initialLastAppliedIndex": 0,
            "raft": {"state": "Leader", "numPeers": "0", "term": "2", "protocolVersion": "3",
                     "latestConfiguration": [{"address": f"{self.host}:8300",
                                              "id": self.node_name, "suffrage": 0}]}}],
            "synchronized": True}

    def save(self) -> None:
        if self.data_dir is not None:
            with self.save_lock:
                generation = self.store.generation
                self.store.save(self.data_dir)
                self.saved_generation = generation

    def autosave(self, stop: threading.Event, every: float = 5.0) -> None:
        """Write the data dir a few seconds after changes, so a killed process loses little."""
        while not stop.wait(every):
            if self.store.generation != self.saved_generation:
                self.save()


class StandinHandle:
    """A running stand-in; `stop()` shuts both servers and saves the data dir."""

    def __init__(self, app: App, http: StandinHTTPServer, grpc_server: grpc.Server,
                 grpc_port: int) -> None:
        self.app = app
        self.http = http
        self.grpc = grpc_server
        self.http_port = http.server_address[1]
        self.grpc_port = grpc_port
        self.stopped = False
        self._thread = threading.Thread(target=http.serve_forever, daemon=True,
                                        name="standin-rest")
        self._thread.start()
        self._stop_saving = threading.Event()
        if app.data_dir is not None:
            threading.Thread(target=app.autosave, args=(self._stop_saving,), daemon=True,
                             name="standin-autosave").start()

    @property
    def store(self) -> Store:
        return self.app.store

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._stop_saving.set()
        self.grpc.stop(grace=1).wait()
        self.http.shutdown()
        self.http.server_close()
        self.app.backups.wait()
        self.app.save()

    def __enter__(self) -> StandinHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_standin(http_port: int, grpc_port: int, backup_dir: str | Path | None,
                  api_key: str | None = None, *, host: str = "127.0.0.1",
                  data_dir: str | Path | None = None, backup_delay: float = 0.0,
                  autoschema: bool = True, api_keys: list[str] | None = None,
                  anonymous: bool | None = None, defaults_limit: int = 10,
                  maximum_results: int = 10000, node_name: str = "node1",
                  verbose: bool = False, modules: list[str] | None = None,
                  module_env: dict[str, str] | None = None) -> StandinHandle:
    """Start REST and gRPC listeners (port 0 picks a free port; see the handle's ports).
    `api_key` (or several `api_keys`) turns on API-key auth and, unless `anonymous` says
    otherwise, turns anonymous access off; `backup_dir=None` is Weaviate without the
    backup-filesystem module. `modules`: the vectorizer modules enabled (ENABLE_MODULES:
    text2vec-openai), `module_env` their variables (OPENAI_APIKEY)."""
    store = Store(autoschema, defaults_limit, maximum_results)
    store.modules = Modules(modules, module_env)
    data = Path(data_dir) if data_dir is not None else None
    if data is not None:
        store.load(data)
    auth = Auth([*(api_keys or []), *([api_key] if api_key else [])], anonymous)
    backups = Backups(store, Path(backup_dir) if backup_dir is not None else None, VERSION,
                      backup_delay)
    app = App(store, auth, backups, host, http_port, data, node_name, verbose)
    backups.on_done = app.save
    http = StandinHTTPServer((host, http_port), app)
    app.http_port = http.server_address[1]
    try:
        grpc_server, bound = start_grpc(store, auth, host, grpc_port)
    except Exception:
        http.server_close()
        raise
    return StandinHandle(app, http, grpc_server, bound)
