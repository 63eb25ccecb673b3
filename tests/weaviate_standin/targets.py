"""Which vector indexes a vector search uses, with which query vectors, and how several are
joined (grpc/v1 parseNearVec and extractTargets, db/shard_combine_multi_target.go): minimum
(the default), sum, average, manual weights, relative score."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from . import schema as sch
from .errors import Unprocessable
from .search import Hit, fuse_relative, resolve_target, vector_hits
from .store import Collection, f32
from .stubs import base_pb2, base_search_pb2

Combination = base_search_pb2.CombinationMethod
MULTI = base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32


@dataclass
class Plan:
    pairs: list[tuple[str, Any]]  # (target, query vector), a target may repeat
    join: str = "minimum"
    weights: list[float] | None = None


def target_names(msg: Any) -> tuple[list[str], Any]:
    if msg.HasField("targets"):
        return list(msg.targets.target_vectors), msg.targets
    return list(msg.target_vectors), None


def _join(targets_msg: Any, names: list[str]) -> tuple[str, list[float] | None]:
    if targets_msg is None:
        return "minimum", None
    kind = targets_msg.combination
    if kind == Combination.COMBINATION_METHOD_TYPE_SUM:
        return "sum", [1.0] * len(names)
    if kind == Combination.COMBINATION_METHOD_TYPE_AVERAGE:
        return "average", [1.0 / len(names)] * len(names)
    if kind in (Combination.COMBINATION_METHOD_TYPE_MANUAL,
                Combination.COMBINATION_METHOD_TYPE_RELATIVE_SCORE):
        given = list(targets_msg.weights_for_targets)
        if len(given) != len(names):
            raise Unprocessable(f"number of weights ({len(given)}) does not match number of "
                                f"targets ({len(names)})")
        join = "manual" if kind == Combination.COMBINATION_METHOD_TYPE_MANUAL else "relative"
        return join, [float(w.weight) for w in given]
    return "minimum", None


def _unpack(vec: Any) -> list[Any]:
    """A Vectors message as one or more query vectors (a multi packing = several)."""
    if vec.type == MULTI:
        raw = vec.vector_bytes
        dim = struct.unpack("<H", raw[:2])[0]
        body = raw[2:]
        step = dim * 4
        return [f32(struct.unpack(f"{dim}f", body[i:i + step]))
                for i in range(0, len(body), step)]
    arr = f32(())
    arr.frombytes(vec.vector_bytes)
    return [arr]


def plan(coll: Collection, msg: Any, single: Any, vectors_msg: Any = None) -> Plan:
    """Targets from `msg` (NearVector, NearObject or Hybrid); `single` the one query vector if
    the request has one, else vector_for_targets from `vectors_msg` (default `msg`)."""
    names, targets_msg = target_names(msg)
    join, weights = _join(targets_msg, names)
    if not names:
        names = [resolve_target(coll, [])]
    for name in names:
        resolve_target(coll, [name])
    if single is not None:
        return Plan([(resolve_target(coll, [n]), single) for n in names], join, weights)
    for_targets = list(getattr(vectors_msg or msg, "vector_for_targets", ()))
    if not for_targets:
        raise Unprocessable("near_vector: vector is required")
    unique = list(dict.fromkeys(names))
    if len(for_targets) != len(unique):
        raise Unprocessable("near_vector: vector for target must have the same lengths as "
                            "target vectors")
    pairs: list[tuple[str, Any]] = []
    for name, vft in zip(unique, for_targets, strict=True):
        if vft.name != name:
            raise Unprocessable(f"near_vector: vector for target {name} is required")
        vectors = [v for m in vft.vectors for v in _unpack(m)] if len(vft.vectors) else \
            [_unpack(base_pb2.Vectors(vector_bytes=vft.vector_bytes))[0]]
        pairs.extend((resolve_target(coll, [name]), v) for v in vectors)
    if join in ("sum", "average"):
        weights = [1.0 if join == "sum" else 1.0 / len(pairs)] * len(pairs)
    elif join in ("manual", "relative") and weights is not None and len(weights) != len(pairs):
        by_name = dict(zip(names, weights, strict=True))
        weights = [by_name[t or "default"] if (t or "default") in by_name else 0.0
                   for t, _ in pairs]
    return Plan(pairs, join, weights)


def hits(coll: Collection, candidates: list[Any], p: Plan,
         max_distance: float | None = None) -> list[Hit]:
    if len(p.pairs) == 1:
        target, vec = p.pairs[0]
        return vector_hits(coll, candidates, target, vec, max_distance)
    per = [vector_hits(coll, candidates, t, v) for t, v in p.pairs]
    if p.join == "relative":
        assert p.weights is not None
        fused = fuse_relative(p.weights, [[Hit(h.obj, secondary=h.distance or 0.0) for h in s]
                                          for s in per], [t for t, _ in p.pairs])
        out = [Hit(h.obj, distance=h.score) for h in fused]
        out.reverse()  # descending=false: the smallest joined score first
        return [h for h in out if max_distance is None or (h.distance or 0.0) <= max_distance]
    joined: dict[str, Hit] = {}
    counts: dict[str, int] = {}
    for i, hits_i in enumerate(per):
        for h in hits_i:
            d = h.distance or 0.0
            prev = joined.get(h.obj.uuid)
            if p.join == "minimum":
                joined[h.obj.uuid] = h if prev is None or d < (prev.distance or 0.0) else prev
            else:
                assert p.weights is not None
                total = (prev.distance or 0.0 if prev else 0.0) + p.weights[i] * d
                joined[h.obj.uuid] = Hit(h.obj, distance=total)
            counts[h.obj.uuid] = counts.get(h.obj.uuid, 0) + 1
    out = [h for uid, h in joined.items()
           if p.join == "minimum" or counts[uid] == len(per)]  # missing a vector: dropped
    out = [h for h in out if max_distance is None or (h.distance or 0.0) <= max_distance]
    out.sort(key=lambda h: (h.distance or 0.0, h.obj.doc_id))
    return out


def metric_of(coll: Collection, p: Plan) -> str:
    return sch.vector_distance(coll.schema, p.pairs[0][0])
