"""Search requests (weaviate.v1.Weaviate/Search) end to end: parse as grpc/v1/
parse_search_request.go does, run as traverser/explorer.go does (BM25, then vector, then
hybrid or a plain listing), answer as prepare_reply.go does."""

from __future__ import annotations

import time
from typing import Any

from . import reply, targets
from . import schema as sch
from .codec import vector_from
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
)
from .store import Collection, Store
from .stubs import base_search_pb2, search_get_pb2

AND = base_search_pb2.SearchOperatorOptions.OPERATOR_AND
RANKED = base_search_pb2.Hybrid.FUSION_TYPE_RANKED
_UNSUPPORTED = ("group_by", "generative", "rerank", "near_image", "near_audio",
                "near_video", "near_depth", "near_thermal", "near_imu")


def near_vector_hits(coll: Collection, nv: Any, candidates: list[Any]) -> list[Hit]:
    p = targets.plan(coll, nv, vector_from(nv))
    return targets.hits(coll, candidates, p, _max_distance(coll, p.pairs[0][0], nv))


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


def module_query_vector(store: Store | None, coll: Collection, msg: Any, texts: list[str]
                        ) -> list[float] | None:
    """A query vectorised by the target's module (VectorizeQuery; several concepts are
    averaged as nearText combines them); None when the target has no module."""
    names = targets.target_names(msg)[0]
    target = resolve_target(coll, names[:1])
    if store is None or target not in store.module_targets(coll):
        return None
    vectors = [store.query_vector(coll, target, t) for t in texts]
    return [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]


def near_text_hits(store: Store, coll: Collection, nt: Any, candidates: list[Any]) -> list[Hit]:
    if nt.HasField("move_to") or nt.HasField("move_away"):
        raise Unprocessable("near_text with moveTo/moveAwayFrom is not supported by the "
                            "stand-in")
    vec = module_query_vector(store, coll, nt, list(nt.query))
    if vec is None:
        raise Unprocessable(f"could not vectorize input for collection {coll.name} with "
                            "search-type nearText. Make sure a vectorizer module is "
                            "configured for this collection")
    p = targets.plan(coll, nt, vec)
    return targets.hits(coll, candidates, p, _max_distance(coll, p.pairs[0][0], nt))


def hybrid_hits(coll: Collection, hs: Any, candidates: list[Any], limit: int,
                store: Store | None = None) -> list[Hit]:
    """explorer_hybrid.go: vector and keyword sets (each at least 100 deep), then fusion; a
    query without a vector is vectorised by the collection's module (as Weaviate does)."""
    alpha = float(hs.alpha_param if hs.use_alpha_param else hs.alpha)
    sub_limit = max(HYBRID_MAX_RESULTS, limit)
    sets: list[list[Hit]] = []
    weights: list[float] = []
    names: list[str] = []
    below: set[str] | None = None
    if alpha > 0:
        if hs.HasField("near_text"):
            vec = module_query_vector(store, coll, hs, list(hs.near_text.query))
            if vec is None:
                raise Unprocessable("VectorFromInput was called without vectorizer on class "
                                    f"{coll.name} for input {list(hs.near_text.query)}")
            p, name, max_dist = targets.plan(coll, hs, vec), "vector,nearText", None
        elif hs.HasField("near_vector"):
            names_msg = hs if (hs.HasField("targets") or len(hs.target_vectors)) \
                else hs.near_vector
            p = targets.plan(coll, names_msg, vector_from(hs.near_vector), hs.near_vector)
            name = "vector,nearVector"
            max_dist = _max_distance(coll, p.pairs[0][0], hs.near_vector)
        else:
            vec = vector_from(hs)
            if vec is None:
                vec = module_query_vector(store, coll, hs, [hs.query])
            if vec is None:
                raise Unprocessable(f"VectorFromInput was called without vectorizer on class "
                                    f"{coll.name} for input {hs.query}")
            p, name, max_dist = targets.plan(coll, hs, vec), "vector,hybridVector", None
        hits = targets.hits(coll, candidates, p, max_dist)[:sub_limit]
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
            if name.startswith("near_"):  # modules.go: no vectorizer/media module for it
                kind = "near" + "".join(p.title() for p in name.split("_")[1:])
                raise Unprocessable(f"could not vectorize input for collection {coll.name} with "
                                    f"search-type {kind}. Make sure a vectorizer module is "
                                    "configured for this collection")
            raise Unprocessable(f"{name} is not supported by the stand-in")
    searches = [n for n in ("near_vector", "near_object", "near_text", "bm25_search",
                            "hybrid_search") if req.HasField(n)]
    if len(req.sort_by) and searches:
        raise Unprocessable("sorting cannot be combined with search")
    limit = req.limit if req.limit > 0 else store.defaults_limit
    if req.offset + limit > store.maximum_results:
        raise Unprocessable("query maximum results exceeded")
    selection = reply.select_properties(store, coll, req.properties if req.HasField(
        "properties") else None)
    with store.lock:
        clause = from_proto(coll, req.filters, store) if req.HasField("filters") else None
        if req.HasField("bm25_search"):
            b = req.bm25_search
            hits = bm25(coll, select(coll, clause), b.query, list(b.properties),
                        search_and=b.search_operator.operator == AND,
                        min_match=b.search_operator.minimum_or_tokens_match)
        elif req.HasField("near_vector"):
            hits = near_vector_hits(coll, req.near_vector, select(coll, clause))
        elif req.HasField("near_object"):
            hits = near_object_hits(coll, req.near_object, select(coll, clause))
        elif req.HasField("hybrid_search"):
            hits = hybrid_hits(coll, req.hybrid_search, select(coll, clause),
                               limit + req.offset, store)
        elif req.HasField("near_text"):
            hits = near_text_hits(store, coll, req.near_text, select(coll, clause))
        else:
            hits = _listing(coll, req, clause)
        page = hits[req.offset:req.offset + limit]
        if req.autocut > 0 and searches:
            values = [h.score if h.score is not None else (h.distance or 0.0) for h in page]
            page = page[:autocut(values, req.autocut)]
        metric = None
        nears = [n for n in ("near_vector", "near_object", "near_text") if req.HasField(n)]
        if nears:
            near = getattr(req, nears[0])
            names = targets.target_names(near)[0]
            metric = "joined" if len(names) > 1 else sch.vector_distance(
                coll.schema, resolve_target(coll, names))
        metadata = req.metadata if req.HasField("metadata") else None
        results = [search_get_pb2.SearchResult(
            properties=reply.properties(store, coll, selection, hit.obj),
            metadata=reply.metadata(metadata, hit, metric)) for hit in page]
    return search_get_pb2.SearchReply(took=time.time() - started, results=results,
                                      generative_grouped_result="")


def near_object_hits(coll: Collection, no: Any, candidates: list[Any]) -> list[Hit]:
    source = coll.objects.get(no.id.lower())
    if source is None:
        raise Unprocessable(f"vector search: could not find object {no.id}")
    first = targets.plan(coll, no, [0.0])  # the targets and join, then the object's vectors
    pairs = []
    for target, _ in first.pairs:
        if target not in source.vectors:
            raise Unprocessable(f"vector search: object {no.id} has no vector {target!r}")
        pairs.append((target, source.vectors[target]))
    p = targets.Plan(pairs, first.join, first.weights)
    return targets.hits(coll, candidates, p, _max_distance(coll, pairs[0][0], no))
