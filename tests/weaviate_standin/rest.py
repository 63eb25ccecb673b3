"""The REST side (/v1/...): what weaviate-client v4 calls over HTTP — meta, readiness, schema,
objects, batch, nodes, backups — with Weaviate's status codes and error bodies
({"error":[{"message":...}]}, 401 as {"code":401,"message":...})."""

from __future__ import annotations

import json
import uuid as uuid_mod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import refs
from . import schema as sch
from .errors import NotFound, StandinError, Unauthorized, Unprocessable
from .filters import from_json, select
from .modules import REQUEST_HEADERS
from .store import Collection, StoredObject

OPEN_PATHS = ("/v1", "/v1/", "/v1/.well-known/openid-configuration")


def object_json(coll: Collection, obj: StoredObject, with_vector: bool) -> dict[str, Any]:
    props = {k: refs.with_href(v) if (p := sch.property_of(coll.schema, k)) is not None
             and sch.is_reference(p) else v for k, v in obj.properties.items()}
    out: dict[str, Any] = {"class": coll.name, "creationTimeUnix": obj.created, "id": obj.uuid,
                           "lastUpdateTimeUnix": obj.updated, "properties": props}
    if with_vector:
        if "" in obj.vectors:
            out["vector"] = list(obj.vectors[""])
        named = {k: list(v) for k, v in obj.vectors.items() if k}
        if named:
            out["vectors"] = named
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandinHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.app.verbose:
            super().log_message(format, *args)

    # -- plumbing ----------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise Unprocessable("could not parse the request body as JSON") from None

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if path in ("/v1/.well-known/live", "/v1/.well-known/ready"):
                self._send(200)
                return
            if path not in OPEN_PATHS:
                reason = self.server.app.auth.refusal(self.headers.get("Authorization"))
                if reason is not None:
                    raise Unauthorized(reason)
            token = REQUEST_HEADERS.set({k.lower(): v for k, v in self.headers.items()})
            try:
                with self.server.app.store.lock:  # one request at a time sees the store
                    status, body = self._route(self.command, path, query)
                    if self.command not in ("GET", "HEAD"):
                        self.server.app.store.generation += 1
            finally:
                REQUEST_HEADERS.reset(token)
            self._send(status, body)
        except Unauthorized as err:
            self._send(401, {"code": 401, "message": err.message})
        except NotFound as err:
            self._send(404, {"error": [{"message": err.message}]} if err.message else None)
        except StandinError as err:
            self._send(err.status, {"error": [{"message": err.message}]})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch  # noqa: N815

    # -- routes ------------------------------------------------------------------------------
    def _route(self, method: str, path: str, q: dict[str, str]) -> tuple[int, Any]:
        app = self.server.app
        store = app.store
        parts = path.split("/")[2:]  # after "/v1"
        head = parts[0] if parts else ""
        if path in ("/v1", "/"):
            return 200, {"links": [{"href": "/v1/meta", "name": "Meta information about this "
                                    "instance/cluster"}]}
        if head == ".well-known":
            return 404, None
        if path == "/v1/meta" and method == "GET":
            return 200, app.meta()
        if path == "/v1/cluster/statistics" and method == "GET":
            return 200, app.statistics()
        if head == "nodes" and method == "GET":
            return 200, {"nodes": [app.node(parts[1] if len(parts) > 1 else None,
                                            q.get("output") == "verbose")]}
        if head == "schema":
            return self._schema(method, parts[1:], store)
        if head == "objects":
            return self._objects(method, parts[1:], q)
        if head == "batch" and parts[1:] == ["objects"]:
            return self._batch(method)
        if head == "batch" and parts[1:] == ["references"] and method == "POST":
            return 200, self._batch_references()
        if head == "backups":
            return self._backups(method, parts[1:])
        if head == "graphql":
            raise Unprocessable("GraphQL is not supported by the stand-in")
        raise NotFound(f"path {path} was not found")

    def _schema(self, method: str, rest: list[str], store: Any) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                return 200, {"classes": [c.schema for c in store.collections.values()]}
            if method == "POST":
                return 200, store.create(self._body()).schema
        elif len(rest) == 1:
            if method == "GET":
                coll = store.find(rest[0])
                if coll is None:
                    raise NotFound("")
                return 200, coll.schema
            if method == "DELETE":
                store.drop(rest[0])
                return 200, None
            if method == "PUT":
                coll = self._coll(rest[0])
                with store.lock:
                    sch.update_class(coll.schema, self._body(), store.modules)
                return 200, coll.schema
        elif rest[1:] == ["properties"] and method == "POST":
            coll = self._coll(rest[0])
            with store.lock:
                return 200, sch.add_property(coll.schema, self._body(), list(store.collections))
        elif rest[1:] == ["shards"] and method == "GET":
            coll = self._coll(rest[0])
            return 200, [{"name": coll.shard, "status": "READY", "vectorQueueSize": 0}]
        raise NotFound(f"path /v1/schema/{'/'.join(rest)} was not found")

    def _coll(self, name: str) -> Collection:
        coll = self.server.app.store.find(name)
        if coll is None:
            raise NotFound("")
        return coll

    def _objects(self, method: str, rest: list[str], q: dict[str, str]) -> tuple[int, Any]:
        store = self.server.app.store
        with_vector = "vector" in q.get("include", "")
        if not rest:
            if method == "POST":
                body = self._body()
                coll = self._coll_for_write(str(body.get("class") or ""))
                obj = store.put(coll, str(body.get("id") or uuid_mod.uuid4()),
                                body.get("properties") or {}, body.get("vector"),
                                body.get("vectors"), must_be_new=True)
                return 200, object_json(coll, obj, True)
            if method == "GET":
                return 200, self._list_objects(q, with_vector)
        elif len(rest) == 2:
            coll = self._coll(rest[0])
            uid = rest[1].lower()
            if method in ("GET", "HEAD"):
                obj = coll.objects.get(uid)
                if obj is None:
                    raise NotFound("")
                return (204, None) if method == "HEAD" else (200, object_json(coll, obj,
                                                                               with_vector))
            if method == "DELETE":
                if not store.delete(coll, uid):
                    raise NotFound("")
                return 204, None
            if method in ("PUT", "PATCH"):
                body = self._body()
                if method == "PATCH" and uid not in coll.objects:
                    raise NotFound("")
                obj = store.put(coll, uid, body.get("properties") or {}, body.get("vector"),
                                body.get("vectors"), merge=method == "PATCH")
                return (204, None) if method == "PATCH" else (200, object_json(coll, obj, True))
        elif len(rest) == 4 and rest[2] == "references" and method in ("POST", "PUT", "DELETE"):
            coll = self._coll(rest[0])
            how = {"POST": "add", "PUT": "replace", "DELETE": "delete"}[method]
            refs.change(store, coll, rest[1], rest[3], self._body(), how)
            return (204, None) if method == "DELETE" else (200, None)
        raise NotFound(f"path /v1/objects/{'/'.join(rest)} was not found")

    def _coll_for_write(self, name: str) -> Collection:
        store = self.server.app.store
        if not name:
            raise Unprocessable("invalid object: the given class is empty")
        coll = store.find(name)
        if coll is None and not store.autoschema:
            raise Unprocessable(f"class '{name}' not present in schema")
        return coll if coll is not None else store.create({"class": name})  # auto-schema

    def _list_objects(self, q: dict[str, str], with_vector: bool) -> dict[str, Any]:
        store = self.server.app.store
        names = [q["class"]] if q.get("class") else sorted(store.collections)
        limit = int(q.get("limit") or 25)
        offset = int(q.get("offset") or 0)
        out = []
        for name in names:
            coll = self._coll(name)
            objs = sorted(coll.objects.values(), key=lambda o: o.uuid)
            if q.get("after"):
                objs = [o for o in objs if o.uuid > q["after"].lower()]
            out.extend(object_json(coll, o, with_vector) for o in objs)
        page = out[offset:offset + limit]
        return {"objects": page, "deprecations": None, "totalResults": len(page)}

    def _batch(self, method: str) -> tuple[int, Any]:
        store = self.server.app.store
        body = self._body()
        if method == "POST":
            results = []
            for raw in body.get("objects") or []:
                entry = dict(raw)
                entry.setdefault("id", str(uuid_mod.uuid4()))
                try:
                    coll = self._coll_for_write(str(raw.get("class") or ""))
                    store.put(coll, str(entry["id"]), raw.get("properties") or {},
                              raw.get("vector"), raw.get("vectors"))
                    entry["result"] = {"status": "SUCCESS"}
                except StandinError as err:
                    entry["result"] = {"status": "FAILED",
                                       "errors": {"error": [{"message": err.message}]}}
                results.append(entry)
            return 200, results
        if method == "DELETE":
            match = body.get("match") or {}
            coll = store.find(str(match.get("class") or ""))
            if coll is None:
                raise Unprocessable(f"validate: class: {match.get('class')} doesn't exist")
            dry = bool(body.get("dryRun"))
            with store.lock:
                clause = from_json(coll, match.get("where") or {}, store)
                victims = select(coll, clause)[:store.maximum_results]
                if not dry:
                    for obj in victims:
                        store.delete(coll, obj.uuid)
            verbose = body.get("output") == "verbose"
            return 200, {"match": match, "output": body.get("output") or "minimal",
                         "dryRun": dry, "results": {
                             "matches": len(victims), "limit": store.maximum_results,
                             "successful": len(victims), "failed": 0,
                             "objects": [{"id": o.uuid, "status": "DRYRUN" if dry else "SUCCESS"}
                                         for o in victims] if verbose else None}}
        raise NotFound("path /v1/batch/objects was not found")

    def _batch_references(self) -> list[dict[str, Any]]:
        body = self._body()
        wanted = []
        for item in body if isinstance(body, list) else []:
            source = str(item.get("from", "")).removeprefix("weaviate://localhost/").split("/")
            to_class, to_uuid = refs.parse(str(item.get("to", "")))
            if len(source) != 3:
                raise Unprocessable(f"invalid reference source {item.get('from')!r}")
            wanted.append((source[0], source[1], source[2], to_class or "", to_uuid))
        errors = refs.add_batch(self.server.app.store, wanted)
        return [{**item, "result": {"status": "SUCCESS"} if err is None else
                 {"status": "FAILED", "errors": {"error": [{"message": err}]}}}
                for item, err in zip(body, errors, strict=True)]

    def _backups(self, method: str, rest: list[str]) -> tuple[int, Any]:
        backups = self.server.app.backups
        if not rest:
            raise NotFound("path /v1/backups was not found")
        if rest[0] != "filesystem":
            raise Unprocessable(f'no backup backend "{rest[0]}": backup: backend {rest[0]} not '
                                "found, did you enable the right module?")
        rest = rest[1:]
        if not rest:
            if method == "POST":
                return 200, backups.create(self._body())
            if method == "GET":
                return 200, backups.listing()
        elif len(rest) == 1:
            if method == "GET":
                return 200, backups.status(rest[0])
            if method == "DELETE":
                backups.cancel(rest[0])
                return 204, None
        elif rest[1:] == ["restore"]:
            if method == "POST":
                return 200, backups.restore(rest[0], self._body())
            if method == "GET":
                return 200, backups.status(rest[0], "restore")
        raise NotFound(f"path /v1/backups/filesystem/{'/'.join(rest)} was not found")


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        self.app = app
        super().__init__(address, Handler)

