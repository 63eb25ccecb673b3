"""Search requests (weaviate.v1.Weaviate/Search) end to end: parse as grpc/v1/
parse_search_request.go does, run as traverser/explorer.go does (BM25, then vector, then
hybrid or a plain listing), answer as prepare_reply.go does."""

from __future__ import annotations

import time
from typing import Any

from . import schema as sch
from .codec import to_value, uuid_bytes, vector_from
from .errors import Unprocessable
from .filters import Clause, from_proto, select
from .search import (
    HYBRID_MAX_RESULTS,
    Hit,
    autocut,
    bm25,
    fuse_ranked,
    fuse_relative,
    resolve_target,
    vector_hits,
)
from .store import Collection, Store
from .stubs import base_search_pb2, properties_pb2, search_get_pb2

AND = base_search_pb2.SearchOperatorOptions.OPERATOR_AND
RANKED = base_search_pb2.Hybrid.FUSION_TYPE_RANKED
DEFAULT_LIMIT = 10  # QUERY_DEFAULTS_LIMIT
MAX_RESULTS = 10000  # QUERY_MAXIMUM_RESULTS
_UNSUPPORTED = ("group_by", "generative", "rerank", "near_text", "near_image", "near_audio",
                "near_video", "near_depth", "near_thermal", "near_imu")


def _targets(msg: Any) -> list[str]:
    if msg.HasField("targets"):
        if len(msg.targets.weights_for_targets) or msg.targets.combination:
            raise Unprocessable("multi target vector search is not supported by the stand-in")
        return list(msg.targets.target_vectors)
    return list(msg.target_vectors)


def _query_vector(msg: Any) -> Any:
    vec = vector_from(msg)
    if vec is None and len(getattr(msg, "vector_for_targets", ())):
        vec = vector_from(msg.vector_for_targets[0])
    return vec


def _near_vector(coll: Collection, nv: Any, candidates: list[Any]) -> list[Hit]:
    target = resolve_target(coll, _targets(nv))
    vec = _query_vector(nv)
    if vec is None:
        raise Unprocessable("near_vector: vector is required")
    return vector_hits(coll, candidates, target, vec, _max_distance(coll, target, nv))


def _max_distance(coll: Collection, target: str, msg: Any) -> float | None:
    if msg.HasField("distance") and msg.HasField("certainty"):
        raise Unprocessable("near_vector: cannot provide distance and certainty")
    if msg.HasField("distance"):
        return float(msg.distance)
    if msg.HasField("certainty"):
        metric = sch.vector_distance(coll.schema, target)
        if metric != "cosine":
            raise Unprocessable(f"can't compute and return certainty when vector index is "
                                f"configured with {metric} distance")
        return 2 * (1 - float(msg.certainty))
    return None


def _hybrid(coll: Collection, req: Any, candidates: list[Any], limit: int) -> list[Hit]:
    hs = req.hybrid_search
    alpha = float(hs.alpha_param if hs.use_alpha_param else hs.alpha)
    sub_limit = max(HYBRID_MAX_RESULTS, limit)
    sets: list[list[Hit]] = []
    weights: list[float] = []
    names: list[str] = []
    below: set[str] | None = None
    if alpha > 0:
        if hs.HasField("near_text"):
            raise Unprocessable("VectorFromInput was called without vectorizer on class "
                                f"{coll.name} for input {list(hs.near_text.query)}")
        if hs.HasField("near_vector"):
            target = resolve_target(coll, _targets(hs.near_vector) or _targets(hs))
            vec, name = _query_vector(hs.near_vector), "vector,nearVector"
            max_dist = _max_distance(coll, target, hs.near_vector)
        else:
            target = resolve_target(coll, _targets(hs))
            vec, name, max_dist = _query_vector(hs), "vector,hybridVector", None
        if vec is None:
            raise Unprocessable(f"VectorFromInput was called without vectorizer on class "
                                f"{coll.name} for input {hs.query}")
        hits = vector_hits(coll, candidates, target, vec, max_dist)[:sub_limit]
        if hs.HasField("vector_distance"):
            hits = [h for h in hits if (h.distance or 0.0) <= hs.vector_distance]
            below = {h.obj.uuid for h in hits}
        sets.append(hits)
        weights.append(alpha)
        names.append(name)
    if 1 - alpha > 0:
        op = hs.bm25_search_operator
        use_op = hs.HasField("bm25_search_operator")
        keyword = bm25(coll, candidates, hs.query, list(hs.properties),
                       search_and=use_op and op.operator == AND,
                       min_match=op.minimum_or_tokens_match)[:sub_limit]
        if below is not None:
            keyword = [h for h in keyword if h.obj.uuid in below]
        sets.append(keyword)
        weights.append(1 - alpha)
        names.append("keyword,bm25")
    if hs.fusion_type == RANKED:
        return fuse_ranked(weights, sets, names)
    return fuse_relative(weights, sets, names)


def _listing(coll: Collection, req: Any, clause: Clause | None) -> list[Hit]:
    if req.after:
        if clause is not None or len(req.sort_by):
            raise Unprocessable("cursor api: invalid 'after' parameter: other params cannot be "
                                "set together with 'after' parameter")
        return [Hit(o) for o in sorted(coll.objects.values(), key=lambda o: o.uuid)
                if o.uuid > req.after.lower()]
    if clause is None:  # the objects bucket is keyed by UUID
        objs = sorted(coll.objects.values(), key=lambda o: o.uuid)
    else:
        objs = select(coll, clause)
    for sort in reversed(list(req.sort_by)):
        path = sort.path[0] if len(sort.path) else ""
        key = {"_id": lambda o: o.uuid, "_creationTimeUnix": lambda o: o.created,
               "_lastUpdateTimeUnix": lambda o: o.updated}.get(path)
        if key is None:
            if sch.property_of(coll.schema, path) is None:
                raise Unprocessable(f"invalid 'sort' parameter: sort parameter at position 0: "
                                    f"no such prop with name '{path}' found in class "
                                    f"'{coll.name}' in the schema. Check your schema files for "
                                    "which properties in this class are available")
            key = _prop_key(path)
        objs.sort(key=key, reverse=not sort.ascending)
    return [Hit(o) for o in objs]


def _prop_key(path: str) -> Any:
    def key(obj: Any) -> tuple[int, Any]:
        value = obj.properties.get(path)
        return (0, "") if value is None else (1, value)
    return key


def run(store: Store, req: Any) -> Any:
    started = time.time()
    coll = store.find(req.collection)
    if coll is None:
        raise Unprocessable(f"could not find class {req.collection} in schema")
    if req.tenant:
        raise Unprocessable(f"class {coll.name} has multi-tenancy disabled, but request was "
                            f"with tenant")
    for name in _UNSUPPORTED:
        if req.HasField(name):
            raise Unprocessable(f"{name} is not supported by the stand-in")
    searches = [n for n in ("near_vector", "near_object", "bm25_search", "hybrid_search")
                if req.HasField(n)]
    if len(req.sort_by) and searches:
        raise Unprocessable("sorting cannot be combined with search")
    limit = req.limit if req.limit > 0 else DEFAULT_LIMIT
    if req.offset + limit > MAX_RESULTS:
        raise Unprocessable("query maximum results exceeded")
    props = _selected_properties(coll, req)
    with store.lock:
        clause = from_proto(coll, req.filters) if req.HasField("filters") else None
        if req.HasField("bm25_search"):
            b = req.bm25_search
            hits = bm25(coll, select(coll, clause), b.query, list(b.properties),
                        search_and=b.search_operator.operator == AND,
                        min_match=b.search_operator.minimum_or_tokens_match)
        elif req.HasField("near_vector"):
            hits = _near_vector(coll, req.near_vector, select(coll, clause))
        elif req.HasField("near_object"):
            hits = _near_object(coll, req.near_object, select(coll, clause))
        elif req.HasField("hybrid_search"):
            hits = _hybrid(coll, req, select(coll, clause), limit + req.offset)
        else:
            hits = _listing(coll, req, clause)
        page = hits[req.offset:req.offset + limit]
        if req.autocut > 0 and searches:
            values = [h.score if h.score is not None else (h.distance or 0.0) for h in page]
            page = page[:autocut(values, req.autocut)]
        results = [_result(coll, req, props, hit) for hit in page]
    return search_get_pb2.SearchReply(took=time.time() - started, results=results,
                                      generative_grouped_result="")


def _near_object(coll: Collection, no: Any, candidates: list[Any]) -> list[Hit]:
    target = resolve_target(coll, _targets(no))
    source = coll.objects.get(no.id.lower())
    if source is None or target not in source.vectors:
        raise Unprocessable(f"vector search: could not find object {no.id} or its vector")
    return vector_hits(coll, candidates, target, source.vectors[target],
                       _max_distance(coll, target, no))


def _selected_properties(coll: Collection, req: Any) -> list[str]:
    everything = [p["name"] for p in coll.schema["properties"]
                  if p["dataType"][0] != "blob" and p["dataType"][0][:1].islower()]
    if not req.HasField("properties"):
        return everything
    pr = req.properties
    if len(pr.ref_properties):
        raise Unprocessable("cross-references are not supported by the stand-in")
    if pr.return_all_nonref_properties:
        return everything
    names = [n[:1].lower() + n[1:] for n in pr.non_ref_properties]
    names += [o.prop_name for o in pr.object_properties]
    for name in names:
        if sch.property_of(coll.schema, name) is None:
            raise Unprocessable(f"no such prop with name '{name}' found in class '{coll.name}' "
                                "in the schema. Check your schema files for which properties in "
                                "this class are available")
    return names


def _result(coll: Collection, req: Any, props: list[str], hit: Hit) -> Any:
    obj = hit.obj
    fields = {}
    for name in props:
        definition = sch.property_of(coll.schema, name)
        kind = definition["dataType"][0] if definition else "text"
        fields[name] = to_value(kind, obj.properties.get(name))
    properties = search_get_pb2.PropertiesResult(
        target_collection=coll.name,
        non_ref_props=properties_pb2.Properties(fields=fields) if fields else None)
    meta = search_get_pb2.MetadataResult()
    if req.HasField("metadata"):
        _fill_metadata(coll, req, meta, hit)
    return search_get_pb2.SearchResult(properties=properties, metadata=meta)


def _fill_metadata(coll: Collection, req: Any, meta: Any, hit: Hit) -> None:
    m = req.metadata
    obj = hit.obj
    if m.uuid:
        meta.id = obj.uuid
        meta.id_as_bytes = uuid_bytes(obj.uuid)
    if m.creation_time_unix:
        meta.creation_time_unix, meta.creation_time_unix_present = obj.created, True
    if m.last_update_time_unix:
        meta.last_update_time_unix, meta.last_update_time_unix_present = obj.updated, True
    if m.distance and hit.distance is not None and hit.score is None:
        meta.distance, meta.distance_present = hit.distance, True
    vector_search = req.HasField("near_vector") or req.HasField("near_object")
    if m.certainty and vector_search and hit.distance is not None and hit.score is None:
        target = resolve_target(coll, _targets(req.near_vector if req.HasField("near_vector")
                                               else req.near_object))
        if sch.vector_distance(coll.schema, target) == "cosine":
            meta.certainty, meta.certainty_present = 1 - hit.distance / 2, True
    if m.score and hit.score is not None:
        meta.score, meta.score_present = hit.score, True
    if m.explain_score and hit.score is not None:
        meta.explain_score, meta.explain_score_present = hit.explain, True
    names = set(m.vectors)
    if m.vector:
        if "" in obj.vectors:
            vec = obj.vectors[""]
            meta.vector.extend(vec)
            meta.vector_bytes = vec.tobytes()
        names |= {n for n in obj.vectors if n}
    for name in sorted(names):
        vec = obj.vectors.get(name)
        if vec is not None and len(vec):
            meta.vectors.add(name=name, vector_bytes=vec.tobytes(), type=1)
