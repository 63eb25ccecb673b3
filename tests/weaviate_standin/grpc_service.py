"""The gRPC side, on the client's own generated servicer stubs: weaviate.v1.Weaviate (Search,
BatchObjects, BatchDelete, Aggregate, TenantsGet) and the health check the client pings on
connect. Handler errors go back as Weaviate's Go errors do: status UNKNOWN with the message."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from . import aggregate, query, refs
from .auth import Auth
from .codec import batch_properties, object_vectors, uuid_bytes, vector_from
from .errors import StandinError, Unprocessable
from .filters import from_proto, select
from .modules import REQUEST_HEADERS
from .store import Store
from .stubs import (
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    weaviate_pb2_grpc,
)

MAX_MESSAGE = 104858000  # GRPC_MAX_MESSAGE_SIZE default, also reported in /v1/meta


class WeaviateService(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, store: Store, auth: Auth) -> None:
        self.store = store
        self.auth = auth

    def _call(self, context: grpc.ServicerContext, fn: Callable[[], Any]) -> Any:
        self.auth.check_grpc(context)
        token = REQUEST_HEADERS.set({str(k).lower(): str(v)
                                     for k, v in context.invocation_metadata()})
        try:
            return fn()
        except StandinError as err:
            context.abort(grpc.StatusCode.UNKNOWN, err.message)
        finally:
            REQUEST_HEADERS.reset(token)

    def Search(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call(context, lambda: query.run(self.store, request))

    def Aggregate(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call(context, lambda: aggregate.run(self.store, request))

    def BatchObjects(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call(context, lambda: self._batch_objects(request))

    def BatchDelete(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call(context, lambda: self._batch_delete(request))

    def BatchReferences(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        def add() -> Any:
            started = time.time()
            found = refs.add_batch(self.store, [
                (r.from_collection, r.from_uuid, r.name, r.to_collection, r.to_uuid)
                for r in request.references])
            errors = [batch_pb2.BatchReferencesReply.BatchError(index=i, error=err)
                      for i, err in enumerate(found) if err is not None]
            return batch_pb2.BatchReferencesReply(took=time.time() - started, errors=errors)
        return self._call(context, add)

    def TenantsGet(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        def tenants() -> Any:
            coll = self.store.find(request.collection)
            if coll is None:
                raise Unprocessable(f"could not find class {request.collection} in schema")
            raise Unprocessable(f"multi-tenancy is not enabled for class {coll.name!r}")
        return self._call(context, tenants)

    def BatchStream(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "server-side batching needs Weaviate 1.36; the stand-in is 1.32")

    def _batch_objects(self, request: Any) -> Any:
        started = time.time()
        failed: dict[int, str] = {}
        parsed: dict[int, tuple[Any, dict[str, Any], Any, Any]] = {}
        for index, pb in enumerate(request.objects):
            try:
                if pb.tenant:
                    raise Unprocessable("multi-tenancy is not supported by the stand-in")
                coll = self.store.find(pb.collection)
                props = batch_properties(pb.properties) if pb.HasField("properties") else {}
                if coll is None:
                    if not self.store.autoschema:
                        raise Unprocessable(f"class '{pb.collection}' not present in schema")
                    coll = self.store.create({"class": pb.collection})  # auto-schema
                parsed[index] = (coll, props, vector_from(pb), object_vectors(pb))
            except StandinError as err:
                failed[index] = err.message
        premade = self._vectorise(parsed, failed)
        for index, (coll, props, vector, vectors) in parsed.items():
            if index in failed:
                continue
            try:
                self.store.put(coll, request.objects[index].uuid, props, vector, vectors,
                               premade=premade.get(index))
            except StandinError as err:
                failed[index] = err.message
        errors = [batch_pb2.BatchObjectsReply.BatchError(index=i, error=failed[i])
                  for i in sorted(failed)]
        return batch_pb2.BatchObjectsReply(took=time.time() - started, errors=errors)

    def _vectorise(self, parsed: dict[int, tuple[Any, dict[str, Any], Any, Any]],
                   failed: dict[int, str]) -> dict[int, dict[str, list[float]]]:
        """The objects a collection's module vectorises (no vector brought for it), one
        embeddings call per collection and target; its failure fails each of them."""
        groups: dict[str, list[int]] = {}
        for index, (coll, _props, vector, vectors) in parsed.items():
            if self.store.module_targets(coll) and not (vector or vectors):
                groups.setdefault(coll.name, []).append(index)
        premade: dict[int, dict[str, list[float]]] = {}
        for indexes in groups.values():
            coll = parsed[indexes[0]][0]
            try:
                found = self.store.module_vectors(coll, [parsed[i][1] for i in indexes])
            except StandinError as err:
                failed.update({i: err.message for i in indexes})
                continue
            premade.update(zip(indexes, found, strict=True))
        return premade

    def _batch_delete(self, request: Any) -> Any:
        started = time.time()
        coll = self.store.find(request.collection)
        if coll is None:
            raise Unprocessable(f"could not find class {request.collection} in schema")
        if not request.HasField("filters"):
            raise Unprocessable("no filters in batch delete request")
        with self.store.lock:
            clause = from_proto(coll, request.filters, self.store)
            victims = select(coll, clause)[:self.store.maximum_results]
            if not request.dry_run:
                for obj in victims:
                    self.store.delete(coll, obj.uuid)
        objects = [batch_delete_pb2.BatchDeleteObject(uuid=uuid_bytes(o.uuid), successful=True,
                                                      error="")
                   for o in victims] if request.verbose else []
        return batch_delete_pb2.BatchDeleteReply(
            took=time.time() - started, failed=0, matches=len(victims),
            successful=len(victims), objects=objects)


def _health(request: Any, context: grpc.ServicerContext) -> Any:
    return health_weaviate_pb2.WeaviateHealthCheckResponse(
        status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING)


def start_grpc(store: Store, auth: Auth, host: str, port: int) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.so_reuseport", 0),
    ])
    weaviate_pb2_grpc.add_WeaviateServicer_to_server(WeaviateService(store, auth), server)
    health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            _health,
            request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
            response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
        )})
    server.add_generic_rpc_handlers((health,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on gRPC port {host}:{port}")
    server.start()
    return server, bound
